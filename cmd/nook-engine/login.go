//go:build !nook_lean

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nook-containers/nook/engine"
)

// login and logout need no store: they run as the user, outside nook's user namespace, and
// write the same auth.json Podman and Skopeo read ($XDG_RUNTIME_DIR/containers/auth.json).

func newLoginCmd() *cobra.Command {
	var o engine.LoginOptions
	var passwordStdin, tlsOn bool
	c := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Log in to a registry",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Registry = "docker.io"
			if len(args) == 1 {
				o.Registry = args[0]
			}
			o.TLSVerify = tlsVerify(cmd, tlsOn)
			in := bufio.NewReader(os.Stdin)
			if passwordStdin {
				if o.Password != "" {
					return errors.New("--password and --password-stdin are mutually exclusive: give one")
				}
				if o.Username == "" {
					return errors.New("--password-stdin needs --username")
				}
				b, err := io.ReadAll(in)
				if err != nil {
					return fmt.Errorf("read the password from standard input: %w", err)
				}
				o.Password = strings.TrimRight(string(b), "\r\n")
			}
			interactive := term.IsTerminal(int(os.Stdin.Fd()))
			if o.Username == "" {
				if !interactive {
					return errors.New("no user name: give --username (and --password-stdin), or run on a terminal")
				}
				fmt.Fprint(os.Stderr, "Username: ")
				line, _ := in.ReadString('\n')
				o.Username = strings.TrimSpace(line)
			}
			if o.Password == "" {
				if !interactive {
					return errors.New("no password: give --password-stdin (or --password), or run on a terminal")
				}
				fmt.Fprint(os.Stderr, "Password: ")
				b, err := term.ReadPassword(int(os.Stdin.Fd()))
				fmt.Fprintln(os.Stderr)
				if err != nil {
					return fmt.Errorf("read the password: %w", err)
				}
				o.Password = string(b)
			}
			if o.Username == "" || o.Password == "" {
				return errors.New("a user name and a password are needed to log in")
			}
			if _, err := engine.Login(context.Background(), o); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Login Succeeded")
			return nil
		},
	}
	c.Flags().StringVarP(&o.Username, "username", "u", "", "user name")
	c.Flags().StringVarP(&o.Password, "password", "p", "", "password (visible to other users: prefer --password-stdin)")
	c.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")
	addTLSFlag(c, &tlsOn)
	c.SilenceUsage = true
	return c
}

func newLogoutCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := engine.LoginOptions{Registry: "docker.io"}
			if len(args) == 1 {
				o.Registry = args[0]
			}
			removed, err := engine.Logout(o)
			if err != nil {
				return err
			}
			key := engine.NormalizeRegistry(o.Registry)
			if !removed {
				fmt.Fprintf(cmd.OutOrStdout(), "Not logged in to %s\n", key)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removing login credentials for %s\n", key)
			return nil
		},
	}
	c.SilenceUsage = true
	return c
}
