package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

// inspectContainer describes a container for `nook inspect`; the containers work sets it.
// While it is nil, `nook inspect` knows images only.
var inspectContainer func(e *engine.Engine, name string) (any, error)

// inspectImage describes an image (image_inspect.go); the lean engine, whose only inspect is
// `container inspect`, has none.
var inspectImage func(e *engine.Engine, name string) (any, error)

func inspectCommand(use, short, fixedType string) *cobra.Command {
	var format, typ string
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if fixedType != "" {
				typ = fixedType
			}
			if typ != "" && typ != "image" && typ != "container" {
				return fmt.Errorf("unknown --type %q: use image or container", typ)
			}
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			var docs []any
			var errs []error
			for _, name := range args {
				d, err := inspectOne(e, name, typ)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				docs = append(docs, d)
			}
			out := cmd.OutOrStdout()
			if format != "" {
				t, err := parseTemplate(format)
				if err != nil {
					return err
				}
				for _, d := range docs {
					// Templates see the JSON document, so they use Docker's field names.
					var generic any
					b, _ := json.Marshal(d)
					_ = json.Unmarshal(b, &generic)
					var sb strings.Builder
					if err := t.Execute(&sb, generic); err != nil {
						return fmt.Errorf("invalid --format template: %v", err)
					}
					fmt.Fprintln(out, sb.String())
				}
			} else {
				if docs == nil {
					docs = []any{}
				}
				b, err := json.MarshalIndent(docs, "", "    ")
				if err != nil {
					return err
				}
				fmt.Fprintln(out, string(b))
			}
			return errors.Join(errs...)
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "format the output with a Go template, e.g. '{{.Id}}' or '{{json .Config}}'")
	if fixedType == "" {
		c.Flags().StringVar(&typ, "type", "", "only this kind of object: image or container")
	}
	return engineCmd(c)
}

// inspectOne finds name as a container (unless typ says image), then as an image.
func inspectOne(e *engine.Engine, name, typ string) (any, error) {
	if typ == "" && inspectContainer != nil {
		d, err := inspectContainer(e, name)
		if err == nil || !errors.Is(err, engine.ErrContainerUnknown) {
			return d, err
		}
	}
	if typ != "container" && inspectImage != nil {
		d, err := inspectImage(e, name)
		if err == nil || typ == "image" || !errors.Is(err, engine.ErrImageUnknown) {
			return d, err
		}
	}
	if inspectContainer == nil {
		if typ == "container" {
			return nil, errors.New("inspecting containers is not supported yet: use nook ps -a")
		}
		return nil, fmt.Errorf("no such image: %s", name)
	}
	return inspectContainer(e, name)
}
