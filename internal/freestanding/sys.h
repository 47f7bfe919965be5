/*
 * The system-call layer of nook's freestanding C programs (bin/nook-idle, bin/nook-pause,
 * bin/nook-init):
 * no libc, -static -nostdlib -ffreestanding, so that each maps a few pages and nothing else
 * (docs/decisions.md). Each program defines start_c(long *sp), called by _start below with
 * the initial stack: argc, argv..., 0, envp..., 0.
 */
#ifndef NOOK_FREESTANDING_SYS_H
#define NOOK_FREESTANDING_SYS_H

typedef unsigned long ulong;

#if defined(__x86_64__)
enum { SYS_read = 0, SYS_write = 1, SYS_close = 3, SYS_rt_sigprocmask = 14, SYS_execve = 59,
       SYS_exit = 60, SYS_fcntl = 72, SYS_getcwd = 79, SYS_chdir = 80, SYS_setsid = 112,
       SYS_getdents64 = 217, SYS_waitid = 247, SYS_openat = 257, SYS_readlinkat = 267,
       SYS_ppoll = 271, SYS_signalfd4 = 289, SYS_setns = 308, SYS_execveat = 322,
       SYS_pidfd_send_signal = 424, SYS_close_range = 436, SYS_ioctl = 16, SYS_getpid = 39,
       SYS_clone = 56, SYS_kill = 62, SYS_setpgid = 109 };

static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

__asm__(".text\n.global _start\n_start:\n"
	"xor %rbp,%rbp\n"
	"mov %rsp,%rdi\n"
	"and $-16,%rsp\n"
	"call start_c\n"
	"hlt\n");
#elif defined(__aarch64__)
enum { SYS_read = 63, SYS_write = 64, SYS_close = 57, SYS_rt_sigprocmask = 135, SYS_execve = 221,
       SYS_exit = 93, SYS_fcntl = 25, SYS_getcwd = 17, SYS_chdir = 49, SYS_setsid = 157,
       SYS_getdents64 = 61, SYS_waitid = 95, SYS_openat = 56, SYS_readlinkat = 78,
       SYS_ppoll = 73, SYS_signalfd4 = 74, SYS_setns = 268, SYS_execveat = 281,
       SYS_pidfd_send_signal = 424, SYS_close_range = 436, SYS_ioctl = 29, SYS_getpid = 172,
       SYS_clone = 220, SYS_kill = 129, SYS_setpgid = 154 };

static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;
	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	return x0;
}

__asm__(".text\n.global _start\n_start:\n"
	"mov x29, #0\n"
	"mov x30, #0\n"
	"mov x0, sp\n"
	"and sp, x0, #-16\n"
	"bl start_c\n"
	"b .\n");
#else
#error "nook: unsupported architecture for the freestanding helpers"
#endif

#define sys3(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)

#endif
