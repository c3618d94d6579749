/*
 * Hostile program: tries every syscall the sandbox's seccomp profile (config/seccomp.json) must deny,
 * and the escapes they stand for, with real arguments. One line per attempt on stdout:
 *
 *   NAME RESULT
 *
 * RESULT is 0 when the call succeeded (the escape worked, or would have with the right privileges), or
 * the errno name it failed with (EPERM, ENOSYS, ...). Lines named NAME/reach call the same syscall with
 * arguments the kernel itself rejects with a distinctive errno (EBADF, EFAULT, EINVAL...): that errno
 * means the call reached the kernel, EPERM/ENOSYS that seccomp stopped it first.
 * Lines named ok/... are legitimate calls that must keep working under the profile.
 *
 * Built and run by test/hostile/run.ts in a sandbox container (gcc -O0 main.c -o main); x86_64 only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#define KEY_SPEC_PROCESS_KEYRING (-2)
#define KEY_SPEC_SESSION_KEYRING (-3)
#define KEYCTL_GET_KEYRING_ID 0

static void report(const char *name, long r)
{
	const char *e = r < 0 ? strerrorname_np(errno) : "0";
	printf("%s %s\n", name, e ? e : "E?");
	fflush(stdout);
}

/* A clone(2) or clone3(2) that succeeded made a child: it must end at once. */
static long reap_if_child(long r)
{
	if (r == 0)
		_exit(0);
	if (r > 0)
		waitpid((pid_t)r, NULL, __WALL);
	return r;
}

int main(void)
{
	long r;

	/* io_uring: allowed by Docker 20.10's default profile. */
	struct io_uring_params params;
	memset(&params, 0, sizeof params);
	r = syscall(SYS_io_uring_setup, 8, &params);
	report("io_uring_setup", r);
	int ring = (int)r;
	report("io_uring_enter", syscall(SYS_io_uring_enter, ring, 0, 0, 0, NULL, 0));
	report("io_uring_register", syscall(SYS_io_uring_register, ring, IORING_UNREGISTER_BUFFERS, NULL, 0));
	if (ring >= 0)
		close(ring);
	report("io_uring_setup/reach", syscall(SYS_io_uring_setup, 0, NULL));
	report("io_uring_enter/reach", syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0));

	/* userfaultfd: the exploit writer's race widener; user-mode-only faults need no privilege. */
	r = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	report("userfaultfd", r);
	if (r >= 0)
		close((int)r);
	report("userfaultfd/reach", syscall(SYS_userfaultfd, UFFD_USER_MODE_ONLY | 0x40000000));

	/* perf_event_open on ourselves: a software counter, what perf_event_paranoid 2 still allows. */
	struct perf_event_attr pe;
	memset(&pe, 0, sizeof pe);
	pe.type = PERF_TYPE_SOFTWARE;
	pe.size = sizeof pe;
	pe.config = PERF_COUNT_SW_CPU_CLOCK;
	pe.exclude_kernel = 1;
	pe.exclude_hv = 1;
	r = syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0);
	report("perf_event_open", r);
	if (r >= 0)
		close((int)r);
	report("perf_event_open/reach", syscall(SYS_perf_event_open, NULL, 0, -1, -1, ~0ul));

	/* bpf: a one-element array map (the first step of any BPF program). */
	union bpf_attr attr;
	memset(&attr, 0, sizeof attr);
	attr.map_type = BPF_MAP_TYPE_ARRAY;
	attr.key_size = 4;
	attr.value_size = 4;
	attr.max_entries = 1;
	r = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
	report("bpf", r);
	if (r >= 0)
		close((int)r);
	report("bpf/reach", syscall(SYS_bpf, 0xffff, NULL, 0));

	/* Kernel keyrings: not namespaced, shared by the uid across containers. */
	report("keyctl", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
	report("add_key", syscall(SYS_add_key, "user", "braindrill", "x", 1, KEY_SPEC_PROCESS_KEYRING));
	report("request_key", syscall(SYS_request_key, "user", "braindrill-none", NULL, 0));
	report("keyctl/reach", syscall(SYS_keyctl, 0x7fff, 0, 0, 0, 0));

	/* Namespaces: a user namespace gives "root" inside it and a much larger kernel surface. */
	report("unshare-user", syscall(SYS_unshare, CLONE_NEWUSER));
	report("unshare-mount", syscall(SYS_unshare, CLONE_NEWNS));
	report("unshare-net", syscall(SYS_unshare, CLONE_NEWNET));
	report("unshare-pid", syscall(SYS_unshare, CLONE_NEWPID));
	report("unshare-time", syscall(SYS_unshare, 0x00000080 /* CLONE_NEWTIME */));
	report("unshare-files", syscall(SYS_unshare, CLONE_FILES));
	report("unshare/reach", syscall(SYS_unshare, 0x1)); /* an invalid flag: EINVAL from the kernel */
	report("clone-newuser", reap_if_child(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, 0)));
	report("clone-newns", reap_if_child(syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, NULL, NULL, NULL, 0)));
	report("clone-newnet", reap_if_child(syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, NULL, NULL, NULL, 0)));
	struct {
		uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	} ca;
	memset(&ca, 0, sizeof ca);
	ca.flags = CLONE_NEWUSER;
	ca.exit_signal = SIGCHLD;
	report("clone3-newuser", reap_if_child(syscall(SYS_clone3, &ca, sizeof ca)));
	ca.flags = 0;
	report("clone3", reap_if_child(syscall(SYS_clone3, &ca, sizeof ca)));
	report("clone3/reach", syscall(SYS_clone3, NULL, 0));
	r = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	report("setns", syscall(SYS_setns, (int)r, CLONE_NEWNET));
	if (r >= 0)
		close((int)r);
	report("setns/reach", syscall(SYS_setns, -1, 0));

	/* Mounts, old and new API. */
	mkdir("/tmp/hostile-mnt", 0700);
	report("mount", syscall(SYS_mount, "none", "/tmp/hostile-mnt", "tmpfs", 0, NULL));
	report("mount/reach", syscall(SYS_mount, NULL, (char *)1, NULL, 0, NULL));
	report("umount2", syscall(SYS_umount2, "/tmp", MNT_DETACH));
	report("umount2/reach", syscall(SYS_umount2, "/tmp", 0xffff));
	report("pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp/hostile-mnt"));
	report("fsopen", syscall(SYS_fsopen, "tmpfs", 0));
	report("open_tree", syscall(SYS_open_tree, AT_FDCWD, "/tmp", 1 /* OPEN_TREE_CLONE */));
	report("move_mount/reach", syscall(SYS_move_mount, -1, "", -1, "", 0));
	report("chroot", syscall(SYS_chroot, "/tmp"));

	/* kexec and modules: a new kernel, kernel code. */
	report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
	report("kexec_file_load", syscall(SYS_kexec_file_load, -1, -1, 0, "", 0));
	report("init_module", syscall(SYS_init_module, "", 0, ""));
	report("finit_module", syscall(SYS_finit_module, -1, "", 0));
	report("delete_module", syscall(SYS_delete_module, "braindrill", O_NONBLOCK));

	/* File handles: open_by_handle_at opened any file of a mount (the "shocker" escape). */
	struct {
		unsigned int handle_bytes;
		int handle_type;
		unsigned char f_handle[128];
	} fh;
	memset(&fh, 0, sizeof fh);
	fh.handle_bytes = sizeof fh.f_handle;
	int mount_id = 0;
	report("name_to_handle_at", syscall(SYS_name_to_handle_at, AT_FDCWD, "/etc/passwd", &fh, &mount_id, 0));
	int root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = syscall(SYS_open_by_handle_at, root, &fh, O_RDONLY);
	report("open_by_handle_at", r);
	if (r >= 0)
		close((int)r);
	report("open_by_handle_at/reach", syscall(SYS_open_by_handle_at, -1, NULL, O_RDONLY));

	/* personality: only the harmless personas (PER_LINUX, PER_LINUX32, UNAME26, the query). */
	report("personality-query", syscall(SYS_personality, 0xffffffff));
	report("personality-linux", syscall(SYS_personality, PER_LINUX));
	report("personality-linux32", syscall(SYS_personality, PER_LINUX32));
	report("personality-uname26", syscall(SYS_personality, UNAME26));
	report("personality-no-aslr", syscall(SYS_personality, PER_LINUX | ADDR_NO_RANDOMIZE));
	report("personality-read-implies-exec", syscall(SYS_personality, PER_LINUX | READ_IMPLIES_EXEC));
	report("personality-mmap-page-zero", syscall(SYS_personality, PER_LINUX | MMAP_PAGE_ZERO));
	syscall(SYS_personality, PER_LINUX);

	/* prlimit64: on ourselves (pid 0) it must keep working; on anyone else it must not. */
	struct rlimit rl;
	report("ok/prlimit64-self", syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl));
	report("ok/getrlimit", getrlimit(RLIMIT_NOFILE, &rl));
	report("ok/setrlimit", setrlimit(RLIMIT_NOFILE, &rl));
	report("prlimit64-own-pid", syscall(SYS_prlimit64, getpid(), RLIMIT_NOFILE, NULL, &rl));
	report("prlimit64-pid1-read", syscall(SYS_prlimit64, 1, RLIMIT_NOFILE, NULL, &rl));

	/* Other processes' memory (the supervisor's nonce is in PID 1). */
	char buf[16];
	struct iovec local = { buf, sizeof buf }, remote = { buf, sizeof buf };
	report("process_vm_readv-self", syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0));
	report("kcmp", syscall(SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */, 0, 0));

	/* Socket families: AF_VSOCK is not network-namespaced (the host, or other sandboxes over vsock loopback). */
	static const struct {
		const char *name;
		int family, type;
	} families[] = {
		{ "socket-vsock", 40, SOCK_STREAM },	{ "socket-alg", 38, SOCK_SEQPACKET },
		{ "socket-packet", 17, SOCK_RAW },	{ "socket-key", 15, SOCK_RAW },
		{ "socket-xdp", 44, SOCK_RAW },		{ "ok/socket-unix", AF_UNIX, SOCK_STREAM },
		{ "ok/socket-inet", AF_INET, SOCK_STREAM }, { "ok/socket-inet6", AF_INET6, SOCK_DGRAM },
		{ "ok/socket-netlink", AF_NETLINK, SOCK_RAW },
	};
	for (size_t i = 0; i < sizeof families / sizeof *families; i++) {
		r = socket(families[i].family, families[i].type | SOCK_CLOEXEC, 0);
		report(families[i].name, r);
		if (r >= 0)
			close((int)r);
	}

	/* Legitimate process creation must keep working: fork, clone without namespace flags, a thread's clone. */
	report("ok/fork", reap_if_child(fork()));
	report("ok/clone-plain", reap_if_child(syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, 0)));
	return 0;
}
