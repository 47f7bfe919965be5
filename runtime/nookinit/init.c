/*
 * nook-init: the container's PID 1 with `nook run --init`, as tini is Docker's (docker-init)
 * and catatonit Podman's.
 *
 *     /dev/init -- COMMAND [ARG...]
 *
 * The engine bind-mounts this program read-only at /dev/init (nook's own tmpfs, so the image's
 * files and `nook diff` are untouched) and runs it in place of the command. It starts COMMAND
 * as its only child and then does what a process that is PID 1 by accident (a shell, a server)
 * does not:
 *
 *   - reaps every process that ends orphaned in the container, so none stays a zombie;
 *   - passes every signal it receives on to COMMAND (SIGTERM from `nook stop` included: PID 1
 *     gets no signal whose action is the default, so a COMMAND without a handler would
 *     otherwise ignore it and be killed only at the stop's timeout);
 *   - exits with COMMAND's status once COMMAND has ended, 128+N for signal N (the kernel then
 *     kills whatever is left in the container).
 *
 * COMMAND runs in a process group of its own that is the terminal's foreground group (with
 * -t), so Ctrl-C reaches it once, from the terminal. Without a '/', COMMAND is looked up in
 * PATH; when it cannot be executed, nook-init says why on standard error and exits 127 (not
 * found) or 126 (not executable), as nook run does without --init.
 *
 * Freestanding (no libc), as bin/nook-idle and bin/nook-pause: internal/freestanding/sys.h.
 */

#include "sys.h" /* internal/freestanding: system calls and _start */

enum { SIGCHLD = 17, SIGTTIN = 21, SIGTTOU = 22, NSIG = 64 };
enum { SIG_BLOCK = 0, SIG_SETMASK = 2, SFD_CLOEXEC = 02000000 };
enum { P_ALL = 0, WNOHANG = 1, WEXITED = 4, CLD_EXITED = 1, EINTR = 4, ECHILD = 10 };
enum { ENOENT = 2, EACCES = 13, ENOTDIR = 20, TIOCSPGRP = 0x5410, PATHMAX = 4096 };

/* struct signalfd_siginfo is 128 bytes; ssi_signo is its first field. */
struct sfd_info { unsigned int signo; unsigned char rest[124]; };
/* siginfo_t for SIGCHLD on 64-bit Linux: si_code at 8, si_pid at 16, si_status at 24. */
struct chld_info { int signo, err, code, pad, pid, uid, status; unsigned char rest[100]; };

static long len(const char *s)
{
	long n = 0;
	while (s[n])
		n++;
	return n;
}

static int has(const char *s, char c)
{
	for (; *s; s++)
		if (*s == c)
			return 1;
	return 0;
}

static int prefix(const char *s, const char *p)
{
	while (*p && *s == *p)
		s++, p++;
	return !*p;
}

static void say(const char *a, const char *b, const char *c)
{
	sys3(SYS_write, 2, a, len(a));
	sys3(SYS_write, 2, b, len(b));
	sys3(SYS_write, 2, c, len(c));
}

static void quit(long code)
{
	for (;;)
		sys3(SYS_exit, code, 0, 0);
}

/* run is the child: its own process group, the terminal's foreground one, the signal mask
 * cleared, then COMMAND. It returns only to exit 126 or 127. */
static long run(char **argv, char **envp)
{
	unsigned long none = 0;
	long pid = sys3(SYS_getpid, 0, 0, 0);
	char buf[PATHMAX];
	const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	long err, denied = 0;
	char **e;

	sys3(SYS_setpgid, 0, 0, 0);
	/* No terminal (ENOTTY) is fine. SIGTTOU is still blocked here, as tcsetpgrp needs. */
	sys3(SYS_ioctl, 0, TIOCSPGRP, &pid);
	sys6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&none, 0, sizeof none, 0, 0);

	if (has(argv[0], '/')) {
		err = sys3(SYS_execve, argv[0], argv, envp);
		say("nook-init: exec \"", argv[0], err == -ENOENT ? "\": no such file or directory\n" : "\": permission denied or not an executable\n");
		return err == -ENOENT ? 127 : 126;
	}
	for (e = envp; *e; e++)
		if (prefix(*e, "PATH="))
			path = *e + 5;
	while (*path) {
		long n = 0, m;
		while (path[n] && path[n] != ':')
			n++;
		m = n ? n : 1; /* an empty element is the current directory */
		if (m + 1 + len(argv[0]) + 1 <= PATHMAX) {
			long i, k = 0;
			if (n)
				for (i = 0; i < n; i++)
					buf[k++] = path[i];
			else
				buf[k++] = '.';
			buf[k++] = '/';
			for (i = 0; argv[0][i]; i++)
				buf[k++] = argv[0][i];
			buf[k] = 0;
			err = sys3(SYS_execve, buf, argv, envp);
			if (err == -EACCES)
				denied = 1;
			else if (err != -ENOENT && err != -ENOTDIR)
				denied = 1; /* ENOEXEC and the like: found, not executable */
		}
		path += n;
		if (*path == ':')
			path++;
	}
	if (denied) {
		say("nook-init: exec \"", argv[0], "\": permission denied or not an executable\n");
		return 126;
	}
	say("nook-init: exec \"", argv[0], "\": executable file not found in $PATH\n");
	return 127;
}

__attribute__((used)) void start_c(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	unsigned long all = ~0UL, child;
	int sfd, i;

	if (argc > 1 && argv[1][0] == '-' && argv[1][1] == '-' && !argv[1][2])
		argv++, argc--;
	if (argc < 2) {
		say("nook-init: usage: nook-init -- COMMAND [ARG...]", "", "\n");
		quit(125);
	}
	argv++;

	/* Every signal but the ones a fault raises comes through the signalfd: a blocked signal is
	 * queued even for PID 1, whose default-action signals the kernel would drop. */
	all &= ~((1UL << (4 - 1)) | (1UL << (5 - 1)) | (1UL << (7 - 1)) | (1UL << (8 - 1)) |
		 (1UL << (11 - 1)) | (1UL << (31 - 1))); /* SIGILL SIGTRAP SIGBUS SIGFPE SIGSEGV SIGSYS */
	sys6(SYS_rt_sigprocmask, SIG_BLOCK, (long)&all, 0, sizeof all, 0, 0);
	sfd = (int)sys6(SYS_signalfd4, -1, (long)&all, sizeof all, SFD_CLOEXEC, 0, 0);
	if (sfd < 0) {
		say("nook-init: signalfd failed", "", "\n");
		quit(125);
	}

	child = (unsigned long)sys6(SYS_clone, SIGCHLD, 0, 0, 0, 0, 0);
	if ((long)child < 0) {
		say("nook-init: cannot start the command", "", "\n");
		quit(125);
	}
	if (child == 0)
		quit(run(argv, envp));

	for (;;) {
		struct sfd_info si;
		long n = sys3(SYS_read, sfd, &si, sizeof si);
		if (n == -EINTR)
			continue;
		if (n != sizeof si)
			quit(125);
		if (si.signo != SIGCHLD) {
			/* The child's group is its own: SIGTTIN/SIGTTOU from the terminal are for us. */
			if (si.signo != SIGTTIN && si.signo != SIGTTOU)
				sys3(SYS_kill, child, si.signo, 0);
			continue;
		}
		for (;;) {
			struct chld_info ci;
			unsigned char *p = (unsigned char *)&ci;
			for (i = 0; i < (int)sizeof ci; i++)
				p[i] = 0;
			n = sys6(SYS_waitid, P_ALL, 0, (long)&ci, WEXITED | WNOHANG, 0, 0);
			if (n == -EINTR)
				continue;
			if (n < 0 || ci.pid == 0)
				break; /* none left (ECHILD), or none ended yet */
			if ((unsigned long)ci.pid == child)
				quit(ci.code == CLD_EXITED ? (ci.status & 0xff) : 128 + (ci.status & 0x7f));
		}
	}
}
