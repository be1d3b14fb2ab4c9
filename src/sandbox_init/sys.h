/* The five system calls attune-sandbox-init makes, and its entry point.
 * On x86-64 and AArch64 the init is built without a C library (no startup
 * code, no relocation, two pages): each execution's sandbox executes it,
 * and on a VM whose page faults are dear a static libc's start costs more
 * than the rest of the init. Elsewhere (ATTUNE_INIT_LIBC) libc's wrappers
 * stand in. Every call returns the kernel's answer: a negative errno on
 * failure. */
#ifndef ATTUNE_SANDBOX_INIT_SYS_H
#define ATTUNE_SANDBOX_INIT_SYS_H

#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>

int init_main(int argc, char **argv);

/* The kernel's signal set (rt_sigtimedwait's, 8 bytes), not libc's. */
typedef unsigned long init_sigset;
#define INIT_SIGSET_SIZE sizeof(init_sigset)
#define INIT_SIGBIT(sig) (1UL << ((sig)-1))

#ifndef ATTUNE_INIT_LIBC

#if defined(__x86_64__)
static inline long init_syscall4(long n, long a, long b, long c, long d)
{
    register long r10 __asm__("r10") = d;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
                     : "rcx", "r11", "memory");
    return ret;
}
/* The kernel leaves argc, argv... at the stack pointer. */
#define INIT_ENTRY                                                                                 \
    __asm__(".text\n.global _start\n_start:\n\txor %ebp, %ebp\n\tmov %rsp, %rdi\n"                 \
            "\tand $-16, %rsp\n\tcall init_start\n\thlt\n")
#elif defined(__aarch64__)
static inline long init_syscall4(long n, long a, long b, long c, long d)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory", "cc");
    return x0;
}
#define INIT_ENTRY                                                                                 \
    __asm__(".text\n.global _start\n_start:\n\tmov x29, #0\n\tmov x30, #0\n\tmov x0, sp\n"         \
            "\tbl init_start\n\tbrk #0\n")
#else
#error "attune-sandbox-init without libc: x86-64 and AArch64 only (build with ATTUNE_INIT_LIBC)"
#endif

static inline long init_wait4(pid_t pid, int *status, int options)
{
    return init_syscall4(SYS_wait4, pid, (long)status, options, 0);
}

static inline long init_kill(pid_t pid, int sig)
{
    return init_syscall4(SYS_kill, pid, sig, 0, 0);
}

static inline long init_write(int fd, const void *buf, unsigned long len)
{
    return init_syscall4(SYS_write, fd, (long)buf, (long)len, 0);
}

static inline long init_sigwait(const init_sigset *set)
{
    return init_syscall4(SYS_rt_sigtimedwait, (long)set, 0, 0, INIT_SIGSET_SIZE);
}

static inline _Noreturn void init_exit(int code)
{
    for (;;)
        init_syscall4(SYS_exit_group, code, 0, 0, 0);
}

#define INIT_PROGRAM                                                                               \
    INIT_ENTRY;                                                                                    \
    _Noreturn void init_start(long *sp);                                                           \
    _Noreturn void init_start(long *sp)                                                            \
    {                                                                                              \
        init_exit(init_main((int)sp[0], (char **)(sp + 1)));                                       \
    }

#else /* ATTUNE_INIT_LIBC */

#include <stdlib.h>
#include <unistd.h>

static inline long init_result(long rc)
{
    return rc < 0 ? -errno : rc;
}

static inline long init_wait4(pid_t pid, int *status, int options)
{
    return init_result(syscall(SYS_wait4, pid, status, options, NULL));
}

static inline long init_kill(pid_t pid, int sig)
{
    return init_result(syscall(SYS_kill, pid, sig));
}

static inline long init_write(int fd, const void *buf, unsigned long len)
{
    return init_result(syscall(SYS_write, fd, buf, len));
}

static inline long init_sigwait(const init_sigset *set)
{
    return init_result(syscall(SYS_rt_sigtimedwait, set, NULL, NULL, INIT_SIGSET_SIZE));
}

static inline _Noreturn void init_exit(int code)
{
    _exit(code);
}

#define INIT_PROGRAM                                                                               \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        return init_main(argc, argv);                                                              \
    }

#endif
#endif
