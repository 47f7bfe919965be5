/*
 * nook-idle: what a detached container's monitor becomes while nothing happens.
 *
 * The Go monitor (nook-runtime monitor) execs this program once its container runs, no
 * client is attached and no output came for a while; it keeps the monitor's pid, its
 * children (the container's init, slirp4netns) and the fds it is told about. It only waits:
 * on the first sign of activity (output, an attach connection, a connection or a datagram on
 * a published port, a signal, a child's exit) it execs the Go monitor again, which resumes.
 *
 *     nook-idle FD,FD,... PATH ARG0 ARG...
 *
 * FD,... are the fds to poll for input ("-" for none); PATH is the program to exec back and
 * ARG0 ARG... its argv, to which nook-idle appends one argument: the signals it consumed, as decimal numbers
 * separated by commas ("" for none). The Go side blocked the signals below before the exec (a
 * mask survives execve), so none is lost between the two programs; here they are read from a
 * signalfd. Any error or surprise execs back too: nook-idle never spins and never decides.
 *
 * Freestanding (no libc): -Os -static -nostdlib -ffreestanding, its own _start and system
 * calls (internal/freestanding/sys.h), so that it maps a few pages and nothing else (see
 * docs/decisions.md).
 */

#include "sys.h" /* internal/freestanding: system calls and _start */

enum { SIGHUP = 1, SIGINT = 2, SIGQUIT = 3, SIGUSR1 = 10, SIGUSR2 = 12, SIGTERM = 15, SIGCHLD = 17 };
enum { SIG_BLOCK = 0, SFD_NONBLOCK = 04000, SFD_CLOEXEC = 02000000 };
enum { POLLIN = 1, P_ALL = 0, WNOHANG = 1, WEXITED = 4, WNOWAIT = 0x01000000, EINTR = 4, ECHILD = 10 };
enum { MAXFDS = 256, MAXARGS = 64 }; /* MAXFDS: idleMaxFds in monitor/idle_linux.go */

struct pollfd { int fd; short events, revents; };
/* struct signalfd_siginfo is 128 bytes; ssi_signo is its first field. */
struct sfd_info { unsigned int signo; unsigned char rest[124]; };

static char siglist[64]; /* "15,10": the consumed signals */

static void addsig(unsigned int sig)
{
	char d[4];
	int n = 0, len = 0;
	while (siglist[len])
		len++;
	if (len > (int)sizeof siglist - 6)
		return;
	if (len)
		siglist[len++] = ',';
	do
		d[n++] = '0' + sig % 10;
	while ((sig /= 10) && n < 3);
	while (n)
		siglist[len++] = d[--n];
	siglist[len] = 0;
}

/* parsefds reads "3,5,7" into fds; "-" is none. */
static int parsefds(const char *s, struct pollfd *fds)
{
	int n = 0;
	if (s[0] == '-' && !s[1])
		return 0;
	while (*s && n < MAXFDS) {
		int v = 0;
		if (*s < '0' || *s > '9')
			return -1;
		while (*s >= '0' && *s <= '9')
			v = v * 10 + (*s++ - '0');
		fds[n].fd = v;
		fds[n].events = POLLIN;
		fds[n].revents = 0;
		n++;
		if (*s == ',')
			s++;
	}
	return *s ? -1 : n;
}

__attribute__((used)) void start_c(long *sp)
{
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	char *back[MAXARGS + 2];
	static struct pollfd fds[MAXFDS + 1]; /* in .bss: only the pages used are touched */
	ulong set = 0;
	int nfds = -1, sfd = -1, i;

	if (argc < 4 || argc - 3 > MAXARGS)
		sys3(SYS_exit, 125, 0, 0);
	for (i = 3; i < argc; i++)
		back[i - 3] = argv[i];
	back[argc - 3] = siglist;
	back[argc - 2] = 0;

	set = 1UL << (SIGHUP - 1) | 1UL << (SIGINT - 1) | 1UL << (SIGQUIT - 1) | 1UL << (SIGUSR1 - 1) |
	      1UL << (SIGUSR2 - 1) | 1UL << (SIGTERM - 1) | 1UL << (SIGCHLD - 1);
	/* Already blocked by the Go side; blocking again is a no-op that keeps this program
	 * correct on its own. */
	sys6(SYS_rt_sigprocmask, SIG_BLOCK, (long)&set, 0, 8, 0, 0);
	sfd = (int)sys6(SYS_signalfd4, -1, (long)&set, 8, SFD_NONBLOCK | SFD_CLOEXEC, 0, 0);
	nfds = parsefds(argv[1], fds);
	if (sfd >= 0 && nfds >= 0) {
		unsigned char si[128];
		fds[nfds].fd = sfd;
		fds[nfds].events = POLLIN;
		fds[nfds].revents = 0;
		/* A child that ended before the signalfd existed: its SIGCHLD may have gone to the
		 * Go side. Zombies wait for their parent, so look once. */
		for (i = 0; i < (int)sizeof si; i++)
			si[i] = 0;
		long w = sys6(SYS_waitid, P_ALL, 0, (long)si, WEXITED | WNOHANG | WNOWAIT, 0, 0);
		/* siginfo's si_pid (offset 16) is 0 when no child has ended; ECHILD: no child */
		if ((w == 0 && *(int *)(si + 16) == 0) || w == -ECHILD) {
			long r;
			do
				r = sys6(SYS_ppoll, (long)fds, nfds + 1, 0, 0, 8, 0);
			while (r == -EINTR);
		}
		for (;;) {
			struct sfd_info info;
			if (sys3(SYS_read, sfd, &info, sizeof info) != (long)sizeof info)
				break;
			addsig(info.signo);
		}
	}
	/* sfd is close-on-exec; the mask stays as it is, so a signal that comes now waits for
	 * the Go monitor. */
	sys3(SYS_execve, argv[2], back, envp);
	sys3(SYS_exit, 125, 0, 0);
	for (;;)
		;
}
