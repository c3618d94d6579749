/*
 * Hostile program: attacks the supervisor (bd-supervisor, PID 1 of the sandbox) in one of the ways
 * named by argv[1]. One line per attempt on stdout, as in escapes.c:
 *
 *   NAME RESULT      (0: the call succeeded; else the errno name)
 *
 * then "after 0" once the attack is over and the program is still running (it sleeps 300 ms first, so
 * that a supervisor that notices the attack has the time to act). Whether the supervisor survived and
 * what it reported is in the RESULT frame that test/hostile/run.ts records beside these lines.
 *
 *   ./main ATTACK      ATTACK: prlimit-read, prlimit-<resource> (cpu fsize data stack core nproc nofile
 *                      memlock as sigpending), prlimit-cpu-burn, kill, ptrace, process_vm, proc, pidfd,
 *                      sched, fsetown, oom-adj
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static void report(const char *name, long r)
{
	const char *e = r < 0 ? strerrorname_np(errno) : "0";
	printf("%s %s\n", name, e ? e : "E?");
	fflush(stdout);
}

static const struct {
	const char *name;
	int resource;
} resources[] = {
	{ "cpu", RLIMIT_CPU },	   { "fsize", RLIMIT_FSIZE },	{ "data", RLIMIT_DATA },     { "stack", RLIMIT_STACK },
	{ "core", RLIMIT_CORE },   { "nproc", RLIMIT_NPROC },	{ "nofile", RLIMIT_NOFILE }, { "memlock", RLIMIT_MEMLOCK },
	{ "as", RLIMIT_AS },	   { "sigpending", RLIMIT_SIGPENDING },
};

static int lower(int resource, rlim_t to)
{
	struct rlimit rl = { to, to };
	return (int)syscall(SYS_prlimit64, 1, resource, &rl, NULL);
}

int main(int argc, char **argv)
{
	const char *attack = argc > 1 ? argv[1] : "";
	if (strcmp(attack, "prlimit-read") == 0) {
		struct rlimit rl;
		report("prlimit-pid1-read", syscall(SYS_prlimit64, 1, RLIMIT_NOFILE, NULL, &rl));
	} else if (strncmp(attack, "prlimit-", 8) == 0 && strcmp(attack, "prlimit-cpu-burn") != 0) {
		for (size_t i = 0; i < sizeof resources / sizeof *resources; i++) {
			if (strcmp(attack + 8, resources[i].name) != 0)
				continue;
			/* RLIMIT_CPU 0 is taken as 1 s by the kernel; the others as their lowest value. */
			char name[64];
			snprintf(name, sizeof name, "prlimit-pid1-%s", resources[i].name);
			report(name, lower(resources[i].resource, 0));
		}
	} else if (strcmp(attack, "prlimit-cpu-burn") == 0) {
		/* One second of CPU for PID 1, then make it read a flood of one-byte writes: for 3 s, and
		 * below the test's 1 MiB output drain (beyond it the run is killed as output_limit, which
		 * a fast machine reached). */
		report("prlimit-pid1-cpu", lower(RLIMIT_CPU, 1));
		struct timespec t0, t;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		long writes = 0;
		do {
			for (int i = 0; i < 1000; i++)
				if (write(2, "x", 1) == 1)
					writes++;
			clock_gettime(CLOCK_MONOTONIC, &t);
		} while (t.tv_sec - t0.tv_sec < 3 && writes < 768L * 1024);
		printf("burn-writes %ld\n", writes);
	} else if (strcmp(attack, "kill") == 0) {
		static const int sigs[] = { SIGKILL, SIGTERM, SIGSTOP, SIGINT, SIGHUP, SIGSEGV, SIGUSR1, SIGCHLD, SIGXCPU, SIGPIPE, SIGALRM };
		for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
			char name[64];
			snprintf(name, sizeof name, "kill-pid1-%s", sigabbrev_np(sigs[i]));
			report(name, kill(1, sigs[i]));
		}
		report("kill-all", kill(-1, SIGKILL) == 0 ? 0 : -1); /* everything we may signal, not us, not PID 1 */
	} else if (strcmp(attack, "ptrace") == 0) {
		report("ptrace-attach-pid1", ptrace(PTRACE_ATTACH, 1, NULL, NULL));
		report("ptrace-seize-pid1", ptrace(PTRACE_SEIZE, 1, NULL, NULL));
	} else if (strcmp(attack, "process_vm") == 0) {
		char buf[64];
		struct iovec local = { buf, sizeof buf }, remote = { (void *)0x400000, sizeof buf };
		report("process_vm_readv-pid1", syscall(SYS_process_vm_readv, 1, &local, 1, &remote, 1, 0));
		report("process_vm_writev-pid1", syscall(SYS_process_vm_writev, 1, &local, 1, &remote, 1, 0));
	} else if (strcmp(attack, "proc") == 0) {
		static const struct {
			const char *name, *path;
			int flags;
		} files[] = {
			{ "open-proc1-mem", "/proc/1/mem", O_RDWR },
			{ "open-proc1-task-mem", "/proc/1/task/1/mem", O_RDONLY },
			{ "open-proc1-fd1-write", "/proc/1/fd/1", O_WRONLY },
			{ "open-proc1-fd0-read", "/proc/1/fd/0", O_RDONLY },
			{ "open-proc1-fd-dir", "/proc/1/fd", O_RDONLY | O_DIRECTORY },
			{ "open-proc1-environ", "/proc/1/environ", O_RDONLY },
			{ "open-proc1-maps", "/proc/1/maps", O_RDONLY },
			{ "open-proc1-root", "/proc/1/root/", O_RDONLY | O_DIRECTORY },
			{ "open-proc1-oom_score_adj-write", "/proc/1/oom_score_adj", O_WRONLY },
			{ "open-proc1-timerslack-write", "/proc/1/timerslack_ns", O_WRONLY },
			{ "open-supervisor-binary-write", "/usr/local/bin/bd-supervisor", O_WRONLY },
			{ "open-cgroup-memory-limit-write", "/sys/fs/cgroup/memory/memory.limit_in_bytes", O_WRONLY },
		};
		for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
			int fd = open(files[i].path, files[i].flags | O_CLOEXEC);
			report(files[i].name, fd);
			if (fd >= 0 && strstr(files[i].path, "fd/1")) {
				/* It opened: try to forge a frame on the supervisor's own stdout. */
				report("write-proc1-fd1", write(fd, "\x06\0\0\0\0", 5));
			}
			if (fd >= 0 && strstr(files[i].path, "timerslack")) {
				/* Opening is allowed to all; changing another process's slack needs CAP_SYS_NICE. */
				report("write-proc1-timerslack", write(fd, "1000000000", 10));
			}
			if (fd >= 0)
				close(fd);
		}
	} else if (strcmp(attack, "pidfd") == 0) {
		long pidfd = syscall(SYS_pidfd_open, 1, 0);
		report("pidfd_open-pid1", pidfd);
		report("pidfd_getfd-pid1-fd1", syscall(SYS_pidfd_getfd, (int)pidfd, 1, 0));
		report("pidfd_send_signal-pid1-SIGKILL", syscall(SYS_pidfd_send_signal, (int)pidfd, SIGKILL, NULL, 0));
	} else if (strcmp(attack, "sched") == 0) {
		report("setpriority-pid1", setpriority(PRIO_PROCESS, 1, 19));
		struct sched_param sp = { 0 };
		report("sched_setscheduler-pid1-idle", sched_setscheduler(1, SCHED_IDLE, &sp));
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET(0, &one);
		report("sched_setaffinity-pid1", sched_setaffinity(1, sizeof one, &one));
		report("ioprio_set-pid1-idle", syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 1, 3 << 13 /* IOPRIO_CLASS_IDLE */));
	} else if (strcmp(attack, "fsetown") == 0) {
		/* Ask for SIGKILL (F_SETSIG) to PID 1 whenever our stdout pipe becomes writable again. */
		report("fcntl-setown-pid1", fcntl(1, F_SETOWN, 1));
		report("fcntl-setsig-SIGKILL", fcntl(1, F_SETSIG, SIGKILL));
		report("fcntl-async", fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_ASYNC));
		for (int i = 0; i < 500; i++) /* 32 KiB: the pipe fills and drains, under the 64 KiB kept */
			printf("padding padding padding padding padding padding padding padding\n");
		fflush(stdout);
	} else if (strcmp(attack, "oom-adj") == 0) {
		/* Below the supervisor's 0, the OOM killer would pick the supervisor first. */
		static const char *const values[] = { "0", "-1", "-1000" };
		for (size_t i = 0; i < 3; i++) {
			int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
			long r = fd < 0 ? -1 : write(fd, values[i], strlen(values[i]));
			char name[64];
			snprintf(name, sizeof name, "oom_score_adj-self-%s", values[i]);
			report(name, r);
			if (fd >= 0)
				close(fd);
		}
	} else {
		fprintf(stderr, "unknown attack '%s'\n", attack);
		return 2;
	}
	usleep(300 * 1000);
	report("after", 0);
	return 0;
}
