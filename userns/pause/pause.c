/*
 * nook-pause: the process that keeps nook's user and mount namespace between commands, and
 * the step that puts a command's engine into them (docs/decisions.md, "The pause process").
 *
 *     nook-pause pause LINGER_MS
 *
 * The CLI clones this into a new user and mount namespace (setsid, stdio on /dev/null), writes
 * its maps with newuidmap/newgidmap and then "mapped\n" on fd 3, as for the shim (userns/
 * handshake.go); it then executes itself again as uid 0 of the namespace (nook-pause pause
 * LINGER_MS mapped). From then on it only exists. Every command that joins it pokes it with SIGUSR1
 * (read here from a signalfd); every LINGER_MS/2 milliseconds (at least 100, at most 10 s) it
 * also looks whether any other process shares its mount namespace (a running engine, a
 * container's monitor). It exits once neither has happened for LINGER_MS. SIGTERM or SIGKILL end it at once; nothing is lost, the next
 * command makes a new one.
 *
 *     nook-pause join ARG0 ARG...
 *
 * fd 3 is a pidfd of the pause, fd 4 the engine executable, fd 6 the write end of a status
 * pipe. It joins the pause's user and mount namespaces (one setns on the pidfd, so a pause that
 * died meanwhile cannot be confused with another process), pokes the pause, returns to the caller's working
 * directory by its path, and executes fd 4 with ARG0 ARG... and its own environment: a fresh
 * exec as uid 0 of the namespace, with full capabilities in it. fd 6 is closed by that exec;
 * on any failure before it, a one-line reason is written to fd 6 and it exits 125, and the CLI
 * falls back to a namespace of its own for that command.
 *
 * Freestanding (no libc), as bin/nook-idle: internal/freestanding/sys.h.
 */

#include "sys.h" /* internal/freestanding: system calls and _start */

enum { CLONE_NEWNS = 0x00020000, CLONE_NEWUSER = 0x10000000 };
enum { SIGUSR1 = 10, SIG_BLOCK = 0, SFD_NONBLOCK = 04000, SFD_CLOEXEC = 02000000, POLLIN = 1 };
enum { AT_FDCWD = -100, AT_EMPTY_PATH = 0x1000, O_RDONLY = 0, O_DIRECTORY = 0200000,
       O_CLOEXEC = 02000000, F_SETFD = 2, FD_CLOEXEC = 1, EINTR = 4 };
enum { SYNCFD = 3, PIDFD = 3, EXEFD = 4, STATUSFD = 6, PATHMAX = 4096 };

struct timespec { long sec, nsec; };
struct pollfd { int fd; short events, revents; };

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static long len(const char *s)
{
	long n = 0;
	while (s[n])
		n++;
	return n;
}

/* number parses a non-negative decimal, -1 when s is not one. */
static long number(const char *s)
{
	long v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > 100000000)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

/* fail reports why joining did not happen and exits; the CLI reads it from fd 6. */
static void fail(const char *what, long err)
{
	char msg[96];
	int n = 0, i;
	char d[12];
	for (i = 0; what[i] && n < 80; i++)
		msg[n++] = what[i];
	msg[n++] = ' ';
	err = -err;
	i = 0;
	do
		d[i++] = '0' + err % 10;
	while ((err /= 10) && i < 11);
	while (i)
		msg[n++] = d[--i];
	msg[n++] = '\n';
	sys3(SYS_write, STATUSFD, msg, n);
	sys3(SYS_exit, 125, 0, 0);
}

static void join(char **args, char **envp)
{
	static char cwd[PATHMAX];
	long r = sys3(SYS_getcwd, cwd, sizeof cwd, 0);
	if (r < 0)
		fail("getcwd: errno", r);
	r = sys3(SYS_setns, PIDFD, CLONE_NEWUSER | CLONE_NEWNS, 0);
	if (r < 0)
		fail("setns: errno", r);
	/* The pause's idle clock starts again (best effort: it also sees a running engine). */
	sys6(SYS_pidfd_send_signal, PIDFD, SIGUSR1, 0, 0, 0, 0);
	sys3(SYS_close, PIDFD, 0, 0);
	/* Joining a mount namespace moves the working directory to its root. */
	r = sys3(SYS_chdir, cwd, 0, 0);
	if (r < 0)
		fail("chdir to the working directory: errno", r);
	sys3(SYS_fcntl, EXEFD, F_SETFD, FD_CLOEXEC);
	sys3(SYS_fcntl, STATUSFD, F_SETFD, FD_CLOEXEC);
	r = sys6(SYS_execveat, EXEFD, (long)"", (long)args, (long)envp, AT_EMPTY_PATH, 0);
	fail("execute the engine: errno", r);
}

/* shared reports whether a process other than me (this one's pid, as /proc names it) is in
 * the mount namespace named by self ("mnt:[INODE]"). Processes it may not inspect (other
 * users') are not nook's. */
static int shared(const char *me, const char *self, long selflen)
{
	static char buf[8192];
	char path[64], link[64];
	int found = 0;
	long dir = sys6(SYS_openat, AT_FDCWD, (long)"/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0, 0);
	if (dir < 0)
		return 1; /* cannot tell: stay */
	for (;;) {
		long n = sys3(SYS_getdents64, dir, buf, sizeof buf), off = 0;
		if (n <= 0)
			break;
		while (off < n && !found) {
			/* struct linux_dirent64: d_ino 8, d_off 8, d_reclen 2, d_type 1, d_name */
			unsigned short reclen = *(unsigned short *)(buf + off + 16);
			const char *name = buf + off + 19;
			off += reclen;
			if (*name < '1' || *name > '9' || len(name) > 20)
				continue;
			int i = 0, j;
			for (j = 0; "/proc/"[j]; j++)
				path[i++] = "/proc/"[j];
			for (j = 0; name[j]; j++)
				path[i++] = name[j];
			for (j = 0; "/ns/mnt"[j]; j++)
				path[i++] = "/ns/mnt"[j];
			path[i] = 0;
			long l = sys6(SYS_readlinkat, AT_FDCWD, (long)path, (long)link, sizeof link - 1, 0, 0);
			if (l != selflen)
				continue;
			for (j = 0; j < l && link[j] == self[j]; j++)
				;
			if (j == l && !streq(me, name))
				found = 1;
		}
		if (found)
			break;
	}
	sys3(SYS_close, dir, 0, 0);
	return found;
}

/* mapped waits for the handshake ("mapped\n" once the maps are written; EOF: the CLI died),
 * then executes this program again with "mapped" appended: an exec made before the maps
 * existed gave it no capabilities in its namespace, and without them it could not look at the
 * namespaces of the processes it shares them with (a monitor is not dumpable). */
static void mapped(char **argv, char **envp)
{
	char buf[16];
	char *again[] = { argv[0], argv[1], argv[2], "mapped", 0 };
	long n = 0, r;
	while (n < 7) {
		r = sys3(SYS_read, SYNCFD, buf + n, 7 - n);
		if (r == -EINTR)
			continue;
		if (r <= 0)
			sys3(SYS_exit, 1, 0, 0);
		n += r;
	}
	/* The sync pipe, and any descriptor the CLI was given without close-on-exec by whoever
	 * started it: a pause holds nothing open for its lifetime. */
	sys3(SYS_close_range, SYNCFD, ~0U, 0);
	sys3(SYS_execve, "/proc/self/exe", again, envp);
	sys3(SYS_exit, 1, 0, 0);
}

static void pause_(long linger)
{
	char self[64], me[32];
	long selflen, melen, idle = 0, interval;
	sys3(SYS_chdir, "/", 0, 0);
	melen = sys6(SYS_readlinkat, AT_FDCWD, (long)"/proc/self", (long)me, sizeof me - 1, 0, 0);
	if (melen <= 0)
		sys3(SYS_exit, 1, 0, 0);
	me[melen] = 0;
	selflen = sys6(SYS_readlinkat, AT_FDCWD, (long)"/proc/self/ns/mnt", (long)self, sizeof self - 1, 0, 0);
	if (selflen <= 0)
		sys3(SYS_exit, 1, 0, 0);
	self[selflen] = 0;
	interval = linger / 2;
	if (interval < 100)
		interval = 100;
	if (interval > 10000)
		interval = 10000;
	ulong set = 1UL << (SIGUSR1 - 1);
	sys6(SYS_rt_sigprocmask, SIG_BLOCK, (long)&set, 0, 8, 0, 0);
	struct pollfd pfd = { (int)sys6(SYS_signalfd4, -1, (long)&set, 8, SFD_NONBLOCK | SFD_CLOEXEC, 0, 0), POLLIN, 0 };
	if (pfd.fd < 0)
		sys3(SYS_exit, 1, 0, 0);
	for (;;) {
		struct timespec ts = { interval / 1000, interval % 1000 * 1000000 };
		unsigned char info[128];
		if (sys6(SYS_ppoll, (long)&pfd, 1, (long)&ts, 0, 8, 0) > 0) {
			while (sys3(SYS_read, pfd.fd, info, sizeof info) > 0)
				;
			idle = 0; /* a command joined */
		} else if (shared(me, self, selflen))
			idle = 0;
		else if ((idle += interval) >= linger)
			sys3(SYS_exit, 0, 0, 0);
	}
}

__attribute__((used)) void start_c(long *sp)
{
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;

	if (argc >= 3 && streq(argv[1], "join"))
		join(argv + 2, envp);
	if ((argc == 3 || argc == 4) && streq(argv[1], "pause")) {
		long linger = number(argv[2]);
		if (linger > 0 && argc == 3)
			mapped(argv, envp);
		if (linger > 0 && streq(argv[3], "mapped"))
			pause_(linger);
	}
	sys3(SYS_exit, 125, 0, 0);
	for (;;)
		;
}
