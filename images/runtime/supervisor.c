/*
 * bd-supervisor: PID 1 of every braindrill sandbox container.
 *
 * Reads one request from stdin, writes the files, runs the optional compile step and the run
 * step, and streams their output back as frames on stdout, ending with the RESULT frame.
 * The wire format is docs/protocol.md; this file is its only implementation inside the sandbox.
 *
 *   bd-supervisor [--env KEY=VALUE]... [--warm ARGV...]
 *
 * With --warm, an interpreter (ARGV, with the --env environment) is started at once, before any
 * request, and waits for its job on fd 3; a request with RUN_WARM then runs its run step there
 * instead of starting the interpreter cold. See "Warm interpreters" in docs/protocol.md.
 *
 * Language-agnostic, libc only, gnu11. Built inside the image by images/runtime/setup.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQUEST (16u * 1024u * 1024u)
#define NONCE_LEN 16
#define CHUNK (64u * 1024u)
#define WORK_DIR "/tmp/box"
#define TMP_DIR "/tmp"
/* After the step's processes are killed, how long draining pipes / reaping may take at most. */
#define DRAIN_MS 2000
/* After the result, how long the supervisor waits for the host to close stdin before it exits. */
#define LINGER_MS 5000

enum {
	TAG_END = 0x00,
	TAG_NONCE = 0x01,
	TAG_FILE_NAME = 0x10,
	TAG_FILE_DATA = 0x11,
	TAG_COMPILE_ARG = 0x20,
	TAG_COMPILE_TIMEOUT_MS = 0x21,
	TAG_RUN_ARG = 0x30,
	TAG_RUN_TIMEOUT_MS = 0x31,
	TAG_RUN_WARM = 0x32,
	TAG_STDIN = 0x40,
	TAG_ENV = 0x50,
	TAG_OUTPUT_KEEP = 0x60,
	TAG_OUTPUT_MAX = 0x61,
	TAG_PAUSE_AFTER_COMPILE = 0x70,
};

enum {
	FRAME_RUN_STDOUT = 0x01,
	FRAME_RUN_STDERR = 0x02,
	FRAME_COMPILE_STDOUT = 0x03,
	FRAME_COMPILE_STDERR = 0x04,
	FRAME_COMPILED = 0x05,
	FRAME_RESULT = 0x06,
};

struct strv {
	char **v;
	size_t n, cap;
};

struct step_result {
	bool present;
	bool exited;
	int exit_code;
	int signal;
	bool timed_out;
	bool output_limited;
	bool warm; /* ran in the interpreter started with the container */
	uint64_t wall_ms, cpu_ms, max_rss_kb;
	uint64_t stdout_bytes, stderr_bytes;
};

static struct {
	unsigned char nonce[NONCE_LEN];
	bool have_nonce;
	struct strv compile_argv, run_argv, env;
	uint32_t compile_timeout_ms, run_timeout_ms;
	bool have_compile_timeout, have_run_timeout;
	uint32_t output_keep, output_max;
	bool have_output_keep, have_output_max;
	bool pause_after_compile;
	bool run_warm;
	bool have_stdin;
	int stdin_fd; /* unlinked temp file with the run step's stdin, or -1 */
} req = { .stdin_fd = -1 };

/* The interpreter started before the request (--warm), waiting on fd 3 for its argv. */
static struct {
	struct strv env;   /* --env pairs: the run step's environment, known before the request */
	char **argv;       /* --warm ARGV, or NULL */
	pid_t pid;         /* 0: none waiting */
	int stdin_fd;      /* its fd 0: an empty unlinked file the request's STDIN is written into */
	int out_fd, err_fd; /* read ends of its stdout and stderr */
	int ctl_fd;        /* write end of its fd 3 */
} warm = { .stdin_fd = -1, .out_fd = -1, .err_fd = -1, .ctl_fd = -1 };

static int sig_fd = -1;
static char error_buf[512];
static bool have_error;

/* ------------------------------------------------------------------------------------------ */
/* small helpers */

static void set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_error(const char *fmt, ...)
{
	if (have_error)
		return; /* keep the first, it is the cause */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(error_buf, sizeof error_buf, fmt, ap);
	va_end(ap);
	have_error = true;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q) {
		/* Nothing sensible is left to do; the host sees the missing RESULT frame. */
		static const char msg[] = "bd-supervisor: out of memory\n";
		ssize_t ignored = write(2, msg, sizeof msg - 1);
		(void)ignored;
		_exit(70);
	}
	return q;
}

static void strv_push(struct strv *s, char *str)
{
	if (s->n + 2 > s->cap) {
		s->cap = s->cap ? s->cap * 2 : 8;
		s->v = xrealloc(s->v, s->cap * sizeof *s->v);
	}
	s->v[s->n++] = str;
	s->v[s->n] = NULL;
}

/*
 * Writes all of buf, retrying on EINTR and waiting out EAGAIN on a non-blocking fd, until `deadline`
 * (monotonic ms; 0: no deadline).
 */
static bool write_until(int fd, const void *buf, size_t len, uint64_t deadline)
{
	const unsigned char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			uint64_t t = now_ms();
			if (deadline && t >= deadline)
				return false;
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };
			poll(&pfd, 1, deadline ? (int)(deadline - t) : 1000);
		} else {
			return false;
		}
	}
	return true;
}

static bool write_all(int fd, const void *buf, size_t len)
{
	return write_until(fd, buf, len, 0);
}

/* Reads exactly len bytes. Returns len, or less on EOF, or -1 on error. */
static ssize_t read_full(int fd, void *buf, size_t len)
{
	unsigned char *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);
		if (n > 0) {
			got += (size_t)n;
		} else if (n == 0) {
			break;
		} else if (errno == EINTR) {
			continue;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			poll(&pfd, 1, 1000);
		} else {
			return -1;
		}
	}
	return (ssize_t)got;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static bool out_broken; /* the host went away: stop writing frames */

static void send_frame(uint8_t type, const void *payload, size_t len)
{
	if (out_broken)
		return;
	unsigned char hdr[5] = { type, (unsigned char)(len >> 24), (unsigned char)(len >> 16),
				 (unsigned char)(len >> 8), (unsigned char)len };
	if (!write_all(1, hdr, sizeof hdr) || (len > 0 && !write_all(1, payload, len)))
		out_broken = true;
}

/* ------------------------------------------------------------------------------------------ */
/* cgroup v1 counters: pids.events "max N" and memory.oom_control "oom_kill N" */

static long long read_counter(const char *path, const char *key)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char buf[4096];
	ssize_t n = read_full(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	size_t klen = strlen(key);
	for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
			return strtoll(line + klen + 1, NULL, 10);
	}
	return -1;
}

static long long pids_max_events(void)
{
	long long v = read_counter("/sys/fs/cgroup/pids/pids.events", "max"); /* cgroup v1 */
	if (v < 0)
		v = read_counter("/sys/fs/cgroup/pids.events", "max"); /* cgroup v2 */
	return v;
}

static long long oom_kills(void)
{
	long long v = read_counter("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill"); /* v1 */
	if (v < 0)
		v = read_counter("/sys/fs/cgroup/memory.events", "oom_kill"); /* v2 */
	return v;
}

/* ------------------------------------------------------------------------------------------ */
/* request parsing */

static bool valid_file_name(const unsigned char *name, size_t len)
{
	if (len == 0 || len > 255)
		return false;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return false;
	if (name[0] == '-')
		return false; /* would read as an option where argv holds {sources} */
	for (size_t i = 0; i < len; i++)
		if (name[i] == '/' || name[i] == '\0')
			return false;
	return true;
}

/* Copies len bytes from fd 0 to out_fd (or discards them when out_fd < 0). */
static bool copy_value(size_t len, int out_fd, const char *what)
{
	static unsigned char buf[CHUNK];
	while (len > 0) {
		size_t want = len < sizeof buf ? len : sizeof buf;
		ssize_t n = read_full(0, buf, want);
		if (n != (ssize_t)want) {
			set_error("request truncated inside %s", what);
			return false;
		}
		if (out_fd >= 0 && !write_all(out_fd, buf, want)) {
			set_error("cannot write %s: %s", what, strerror(errno));
			return false;
		}
		len -= want;
	}
	return true;
}

static char *read_string(size_t len, const char *what)
{
	char *s = xrealloc(NULL, len + 1);
	if (read_full(0, s, len) != (ssize_t)len) {
		set_error("request truncated inside %s", what);
		free(s);
		return NULL;
	}
	s[len] = '\0';
	if (memchr(s, '\0', len)) {
		set_error("%s contains a NUL byte", what);
		free(s);
		return NULL;
	}
	return s;
}

static bool read_u32(size_t len, uint32_t *out, bool *have, const char *what)
{
	unsigned char b[4];
	if (len != 4) {
		set_error("%s must be 4 bytes, got %zu", what, len);
		return false;
	}
	if (*have) {
		set_error("%s given twice", what);
		return false;
	}
	if (read_full(0, b, 4) != 4) {
		set_error("request truncated inside %s", what);
		return false;
	}
	*out = be32(b);
	*have = true;
	return true;
}

static int open_tmpfile(void)
{
	int fd = open(TMP_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	/* Fallback for file systems without O_TMPFILE: create, then unlink at once. */
	char path[] = TMP_DIR "/.bd-stdin-XXXXXX";
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

/* Reads and applies the whole request. Returns false with the error set. */
static bool read_request(void)
{
	size_t total = 0;
	unsigned char magic[4];
	ssize_t n = read_full(0, magic, 4);
	if (n != 4) {
		set_error(n == 0 ? "empty request" : "request truncated inside the magic");
		return false;
	}
	if (memcmp(magic, "BDX1", 4) != 0) {
		set_error("bad magic: not a BDX1 request");
		return false;
	}
	total = 4;
	char *file_name = NULL; /* the FILE_NAME waiting for its FILE_DATA */
	for (;;) {
		unsigned char hdr[5];
		n = read_full(0, hdr, 5);
		if (n != 5) {
			set_error("request truncated before END");
			goto fail;
		}
		uint8_t tag = hdr[0];
		uint32_t len = be32(hdr + 1);
		total += 5;
		if (len > MAX_REQUEST || total + len > MAX_REQUEST) {
			set_error("request larger than %u bytes", MAX_REQUEST);
			goto fail;
		}
		total += len;
		if (file_name && tag != TAG_FILE_DATA) {
			set_error("FILE_NAME not followed by FILE_DATA");
			goto fail;
		}
		switch (tag) {
		case TAG_END:
			if (len != 0) {
				set_error("END must be empty");
				goto fail;
			}
			goto done;
		case TAG_NONCE:
			if (len != NONCE_LEN || req.have_nonce) {
				set_error(req.have_nonce ? "NONCE given twice" : "NONCE must be 16 bytes");
				goto fail;
			}
			if (read_full(0, req.nonce, NONCE_LEN) != NONCE_LEN) {
				set_error("request truncated inside NONCE");
				goto fail;
			}
			req.have_nonce = true;
			break;
		case TAG_FILE_NAME: {
			unsigned char name[256];
			if (len > 255) {
				set_error("file name longer than 255 bytes");
				goto fail;
			}
			if (read_full(0, name, len) != (ssize_t)len) {
				set_error("request truncated inside FILE_NAME");
				goto fail;
			}
			if (!valid_file_name(name, len)) {
				set_error("unsafe file name");
				goto fail;
			}
			file_name = xrealloc(NULL, len + 1);
			memcpy(file_name, name, len);
			file_name[len] = '\0';
			break;
		}
		case TAG_FILE_DATA: {
			if (!file_name) {
				set_error("FILE_DATA without FILE_NAME");
				goto fail;
			}
			int fd = open(file_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
			if (fd < 0) {
				set_error(errno == EEXIST ? "file name given twice" : "cannot create a file: %s",
					  strerror(errno));
				goto fail;
			}
			bool ok = copy_value(len, fd, "FILE_DATA");
			if (close(fd) != 0 && ok) {
				set_error("cannot write a file: %s", strerror(errno));
				ok = false;
			}
			free(file_name);
			file_name = NULL;
			if (!ok)
				goto fail;
			break;
		}
		case TAG_COMPILE_ARG:
		case TAG_RUN_ARG:
		case TAG_ENV: {
			const char *what = tag == TAG_ENV ? "ENV" : tag == TAG_RUN_ARG ? "RUN_ARG" : "COMPILE_ARG";
			char *s = read_string(len, what);
			if (!s)
				goto fail;
			if (tag == TAG_ENV) {
				char *eq = strchr(s, '=');
				if (!eq || eq == s) {
					set_error("ENV must be KEY=VALUE");
					free(s);
					goto fail;
				}
				strv_push(&req.env, s);
			} else if (tag == TAG_RUN_ARG) {
				strv_push(&req.run_argv, s);
			} else {
				strv_push(&req.compile_argv, s);
			}
			break;
		}
		case TAG_COMPILE_TIMEOUT_MS:
			if (!read_u32(len, &req.compile_timeout_ms, &req.have_compile_timeout, "COMPILE_TIMEOUT_MS"))
				goto fail;
			break;
		case TAG_RUN_TIMEOUT_MS:
			if (!read_u32(len, &req.run_timeout_ms, &req.have_run_timeout, "RUN_TIMEOUT_MS"))
				goto fail;
			break;
		case TAG_OUTPUT_KEEP:
			if (!read_u32(len, &req.output_keep, &req.have_output_keep, "OUTPUT_KEEP"))
				goto fail;
			break;
		case TAG_OUTPUT_MAX:
			if (!read_u32(len, &req.output_max, &req.have_output_max, "OUTPUT_MAX"))
				goto fail;
			break;
		case TAG_STDIN:
			if (req.have_stdin) {
				set_error("STDIN given twice");
				goto fail;
			}
			req.have_stdin = true;
			/* The warm interpreter already holds this file as fd 0 (same offset, rewound below). */
			req.stdin_fd = warm.stdin_fd >= 0 ? warm.stdin_fd : open_tmpfile();
			if (req.stdin_fd < 0) {
				set_error("cannot create the stdin file: %s", strerror(errno));
				goto fail;
			}
			if (!copy_value(len, req.stdin_fd, "STDIN"))
				goto fail;
			break;
		case TAG_RUN_WARM:
			if (len != 0) {
				set_error("RUN_WARM must be empty");
				goto fail;
			}
			req.run_warm = true;
			break;
		case TAG_PAUSE_AFTER_COMPILE:
			if (len != 0) {
				set_error("PAUSE_AFTER_COMPILE must be empty");
				goto fail;
			}
			req.pause_after_compile = true;
			break;
		default:
			set_error("unknown tag 0x%02x", tag);
			goto fail;
		}
	}
done:
	if (!req.have_nonce)
		set_error("missing NONCE");
	else if (req.run_argv.n == 0)
		set_error("missing RUN_ARG");
	else if (!req.have_run_timeout || req.run_timeout_ms == 0)
		set_error("missing or zero RUN_TIMEOUT_MS");
	else if (req.compile_argv.n > 0 && (!req.have_compile_timeout || req.compile_timeout_ms == 0))
		set_error("missing or zero COMPILE_TIMEOUT_MS");
	else if (!req.have_output_keep || !req.have_output_max)
		set_error("missing OUTPUT_KEEP or OUTPUT_MAX");
	if (have_error)
		return false;
	if (req.stdin_fd >= 0 && lseek(req.stdin_fd, 0, SEEK_SET) != 0) {
		set_error("cannot rewind the stdin file: %s", strerror(errno));
		return false;
	}
	return true;
fail:
	free(file_name);
	return false;
}

/* ------------------------------------------------------------------------------------------ */
/* running one step */

/* The defaults, overridden or extended by `extra` (KEY=VALUE each, later ones win). */
static char **make_env(const struct strv *extra)
{
	static const char *defaults[] = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/tmp",
		"LANG=C.UTF-8",
		"TMPDIR=/tmp",
	};
	struct strv e = { 0 };
	for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++)
		strv_push(&e, (char *)defaults[i]);
	for (size_t i = 0; i < extra->n; i++) {
		char *kv = extra->v[i];
		size_t klen = (size_t)(strchr(kv, '=') - kv) + 1; /* including '=' */
		size_t j;
		for (j = 0; j < e.n; j++)
			if (strncmp(e.v[j], kv, klen) == 0)
				break;
		if (j < e.n)
			e.v[j] = kv; /* a request ENV overrides a default or an earlier ENV */
		else
			strv_push(&e, kv);
	}
	return e.v;
}

/* SIGKILL to every process of the container but ourselves (we are PID 1, all share one uid). */
static void kill_everything(void)
{
	kill(-1, SIGKILL);
}

static void close_fds_from(int lowest)
{
	if (syscall(SYS_close_range, (unsigned)lowest, ~0u, 0) == 0)
		return;
	struct rlimit rl;
	long max = 4096;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 1u << 20)
		max = (long)rl.rlim_max;
	for (long fd = lowest; fd < max; fd++)
		close((int)fd);
}

/* ctl_fd >= 0 becomes the child's fd 3 (a warm interpreter's control pipe); nothing else passes. */
static __attribute__((noreturn)) void child_exec(char **argv, char **envp, int in_fd, int out_fd, int err_fd, int ctl_fd)
{
	setpgid(0, 0);
	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
		_exit(127);
	if (ctl_fd >= 0) {
		/* dup2 onto itself would keep FD_CLOEXEC */
		if (ctl_fd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(ctl_fd, 3) < 0)
			_exit(127);
		close_fds_from(4);
	} else {
		close_fds_from(3);
	}
	/* Nothing of the supervisor's is left in this process but memory: forget the nonce, then become
	 * dumpable again (execve would do so anyway). A non-dumpable process's /proc/self files belong to
	 * root, which would make the oom_score_adj write below fail. */
	explicit_bzero(req.nonce, sizeof req.nonce);
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	/* The OOM killer should take the user's processes, never the supervisor. */
	int adj = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (adj >= 0) {
		ssize_t ignored = write(adj, "1000", 4);
		(void)ignored;
		close(adj);
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL); /* fails harmlessly for SIGKILL, SIGSTOP and glibc's own */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	extern char **environ;
	environ = envp;
	execvp(argv[0], argv);
	int e = errno;
	char msg[600];
	int len = snprintf(msg, sizeof msg, "bd-supervisor: cannot execute %.300s: %s\n", argv[0], strerror(e));
	if (len > 0) {
		ssize_t ignored = write(2, msg, (size_t)len < sizeof msg ? (size_t)len : sizeof msg - 1);
		(void)ignored;
	}
	_exit(127);
}

struct stream {
	int fd;
	uint8_t frame;
	uint64_t *count;
	uint64_t kept;
};

/* Reaps every zombie; records the direct child's status. Returns true when the child was reaped. */
static bool reap(pid_t child, bool *child_done, int *status, struct rusage *ru, uint64_t *end_ms)
{
	for (;;) {
		int st;
		struct rusage r;
		pid_t p = wait4(-1, &st, WNOHANG, &r);
		if (p <= 0) {
			if (p < 0 && errno == EINTR)
				continue;
			return *child_done;
		}
		if (p == child && !*child_done) {
			*child_done = true;
			*status = st;
			*ru = r;
			*end_ms = now_ms();
		}
	}
}

static void drain_signalfd(void)
{
	struct signalfd_siginfo si[8];
	while (read(sig_fd, si, sizeof si) > 0) {
	}
}

/*
 * Forks a child running argv with in_fd as stdin and new pipes as stdout and stderr (and ctl_fd as
 * fd 3 when >= 0). Returns its pid, or -1 with errno set and *failed naming the call that failed.
 */
static pid_t spawn(char **argv, char **envp, int in_fd, int ctl_fd, int *out_fd, int *err_fd, const char **failed)
{
	int out_pipe[2], err_pipe[2];
	*failed = "pipe";
	if (pipe2(out_pipe, O_CLOEXEC) != 0)
		return -1;
	if (pipe2(err_pipe, O_CLOEXEC) != 0) {
		int e = errno;
		close(out_pipe[0]), close(out_pipe[1]);
		errno = e;
		return -1;
	}
	*failed = "fork";
	pid_t child = fork();
	if (child < 0) {
		int e = errno;
		close(out_pipe[0]), close(out_pipe[1]), close(err_pipe[0]), close(err_pipe[1]);
		errno = e;
		return -1;
	}
	if (child == 0)
		child_exec(argv, envp, in_fd, out_pipe[1], err_pipe[1], ctl_fd);
	close(out_pipe[1]);
	close(err_pipe[1]);
	fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
	fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);
	*out_fd = out_pipe[0];
	*err_fd = err_pipe[0];
	return child;
}

static void supervise(pid_t child, int out_fd, int err_fd, uint64_t start, uint32_t timeout_ms, bool compile,
		      struct step_result *res);

static void run_step(char **argv, uint32_t timeout_ms, int in_fd, bool compile, struct step_result *res)
{
	memset(res, 0, sizeof *res);
	res->present = true;
	char **envp = make_env(&req.env);
	int out_fd, err_fd;
	const char *failed;
	uint64_t start = now_ms();
	pid_t child = spawn(argv, envp, in_fd, -1, &out_fd, &err_fd, &failed);
	free(envp);
	if (child < 0) {
		set_error("%s: %s", failed, strerror(errno));
		res->present = false;
		return;
	}
	supervise(child, out_fd, err_fd, start, timeout_ms, compile, res);
}

/* ------------------------------------------------------------------------------------------ */
/* a growable byte buffer (the warm interpreter's argv, the result JSON) */

struct buf {
	char *p;
	size_t n, cap;
};

static void buf_add(struct buf *b, const char *s, size_t len)
{
	if (b->n + len + 1 > b->cap) {
		while (b->n + len + 1 > b->cap)
			b->cap = b->cap ? b->cap * 2 : 1024;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, s, len);
	b->n += len;
	b->p[b->n] = '\0';
}

/* ------------------------------------------------------------------------------------------ */
/* the warm interpreter */

/* Starts --warm ARGV waiting on fd 3. A failure only means the run step will start cold. */
static void start_warm(void)
{
	int ctl[2];
	warm.stdin_fd = open_tmpfile();
	if (warm.stdin_fd < 0)
		return;
	if (pipe2(ctl, O_CLOEXEC) != 0)
		return;
	char **envp = make_env(&warm.env);
	const char *failed;
	pid_t child = spawn(warm.argv, envp, warm.stdin_fd, ctl[0], &warm.out_fd, &warm.err_fd, &failed);
	free(envp);
	close(ctl[0]);
	if (child < 0) {
		close(ctl[1]);
		return;
	}
	fcntl(ctl[1], F_SETFL, O_NONBLOCK);
	warm.ctl_fd = ctl[1];
	warm.pid = child;
}

/* Ends the warm interpreter (unused, or dead already) and closes its pipes; its stdin file stays. */
static void stop_warm(void)
{
	if (warm.pid > 0) {
		kill(-warm.pid, SIGKILL);
		kill(warm.pid, SIGKILL);
		while (waitpid(warm.pid, NULL, 0) < 0 && errno == EINTR) {
		}
	}
	warm.pid = 0;
	int *fds[] = { &warm.out_fd, &warm.err_fd, &warm.ctl_fd };
	for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
		if (*fds[i] >= 0)
			close(*fds[i]), *fds[i] = -1;
}

/* Whether the warm interpreter still waits (it may have died: out of memory at start, say). */
static bool warm_alive(void)
{
	if (warm.pid <= 0)
		return false;
	pid_t p;
	while ((p = waitpid(warm.pid, NULL, WNOHANG)) < 0 && errno == EINTR) {
	}
	if (p == 0)
		return true;
	warm.pid = 0; /* reaped (or not ours): nothing to kill */
	stop_warm();
	return false;
}

/*
 * The run step in the warm interpreter: its argv goes down fd 3 as NUL-terminated strings, then EOF;
 * from then on it is supervised like a cold step. Returns false when the interpreter could not take
 * the job (it died meanwhile): the caller then runs the step cold.
 */
static bool run_warm(char **argv, uint32_t timeout_ms, struct step_result *res)
{
	struct buf msg = { 0 };
	for (char **a = argv; *a; a++)
		buf_add(&msg, *a, strlen(*a) + 1); /* with its NUL */
	uint64_t start = now_ms();
	bool sent = write_until(warm.ctl_fd, msg.p, msg.n, start + timeout_ms);
	free(msg.p);
	close(warm.ctl_fd);
	warm.ctl_fd = -1;
	if (!sent) {
		stop_warm();
		return false;
	}
	memset(res, 0, sizeof *res);
	res->present = true;
	res->warm = true;
	pid_t child = warm.pid;
	int out_fd = warm.out_fd, err_fd = warm.err_fd;
	warm.pid = 0, warm.out_fd = -1, warm.err_fd = -1; /* supervise() owns them now */
	supervise(child, out_fd, err_fd, start, timeout_ms, false, res);
	return true;
}

/* Waits for the step's process, relays its output as frames, enforces its time and output limits. */
static void supervise(pid_t child, int out_fd, int err_fd, uint64_t start, uint32_t timeout_ms, bool compile,
		      struct step_result *res)
{
	struct stream streams[2] = {
		{ out_fd, compile ? FRAME_COMPILE_STDOUT : FRAME_RUN_STDOUT, &res->stdout_bytes, 0 },
		{ err_fd, compile ? FRAME_COMPILE_STDERR : FRAME_RUN_STDERR, &res->stderr_bytes, 0 },
	};
	uint64_t deadline = start + timeout_ms;
	uint64_t drain_deadline = 0; /* set once everything has been killed */
	bool child_done = false, killed = false, counting = true;
	int status = 0;
	struct rusage ru;
	memset(&ru, 0, sizeof ru);
	uint64_t end_ms = 0;
	static unsigned char buf[CHUNK];

	for (;;) {
		reap(child, &child_done, &status, &ru, &end_ms);
		if (child_done && !killed) {
			/* The step is over: nothing it started may outlive it. */
			kill_everything();
			killed = true;
		}
		if (killed && !drain_deadline)
			drain_deadline = now_ms() + DRAIN_MS;
		bool open_pipes = streams[0].fd >= 0 || streams[1].fd >= 0;
		if (child_done && !open_pipes)
			break;
		uint64_t t = now_ms();
		if (!killed && t >= deadline) {
			res->timed_out = true;
			kill_everything();
			killed = true;
			continue;
		}
		if (drain_deadline && t >= drain_deadline)
			break; /* something refuses to die or keeps a pipe: give up waiting */
		uint64_t until = killed ? drain_deadline : deadline;
		if (killed && !child_done && until > t + 100)
			until = t + 100; /* keep re-killing and reaping until the child is gone */
		struct pollfd pfd[3];
		int nfds = 0;
		pfd[nfds++] = (struct pollfd){ .fd = sig_fd, .events = POLLIN };
		for (int i = 0; i < 2; i++)
			pfd[nfds++] = (struct pollfd){ .fd = streams[i].fd, .events = POLLIN }; /* fd -1 is skipped */
		int wait = (int)(until > t ? until - t : 0);
		int pr = poll(pfd, (nfds_t)nfds, wait);
		if (pr < 0 && errno != EINTR) {
			set_error("poll: %s", strerror(errno));
			kill_everything();
			killed = true;
			break;
		}
		if (pr <= 0)
			continue;
		if (pfd[0].revents)
			drain_signalfd();
		for (int i = 0; i < 2; i++) {
			struct stream *s = &streams[i];
			if (s->fd < 0 || !pfd[i + 1].revents)
				continue;
			ssize_t n = read(s->fd, buf, sizeof buf);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) {
				close(s->fd);
				s->fd = -1;
				continue;
			}
			if (!counting)
				continue; /* past OUTPUT_MAX: drained and dropped */
			*s->count += (uint64_t)n;
			if (s->kept < req.output_keep) {
				uint64_t room = req.output_keep - s->kept;
				size_t fwd = (uint64_t)n < room ? (size_t)n : (size_t)room;
				send_frame(s->frame, buf, fwd);
				s->kept += fwd;
			}
			if (res->stdout_bytes + res->stderr_bytes > req.output_max) {
				res->output_limited = true;
				counting = false;
				if (!killed) {
					kill_everything();
					killed = true;
				}
			}
		}
	}
	for (int i = 0; i < 2; i++)
		if (streams[i].fd >= 0)
			close(streams[i].fd);
	if (!child_done) {
		/* Killed but not reaped within DRAIN_MS: should not happen; wait a last while. */
		for (int i = 0; i < 50 && !child_done; i++) {
			kill_everything();
			usleep(20000);
			reap(child, &child_done, &status, &ru, &end_ms);
		}
		if (!child_done) {
			set_error("the step's process could not be reaped");
			end_ms = now_ms();
		}
	}
	/* Reap whatever else died meanwhile (orphans are ours). */
	reap(child, &child_done, &status, &ru, &end_ms);

	res->wall_ms = end_ms - start;
	res->cpu_ms = (uint64_t)ru.ru_utime.tv_sec * 1000u + (uint64_t)ru.ru_utime.tv_usec / 1000u +
		      (uint64_t)ru.ru_stime.tv_sec * 1000u + (uint64_t)ru.ru_stime.tv_usec / 1000u;
	res->max_rss_kb = (uint64_t)ru.ru_maxrss;
	if (child_done && WIFEXITED(status)) {
		res->exited = true;
		res->exit_code = WEXITSTATUS(status);
	} else if (child_done && WIFSIGNALED(status)) {
		res->signal = WTERMSIG(status);
	} else {
		res->signal = SIGKILL;
	}
}

static bool step_ok(const struct step_result *r)
{
	return r->present && r->exited && r->exit_code == 0 && !r->timed_out && !r->output_limited;
}

/* ------------------------------------------------------------------------------------------ */
/* the result frame */

static void buf_fmt(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_fmt(struct buf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n > 0)
		buf_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string: escapes quotes, backslashes and control bytes; non-ASCII bytes become '?'. */
static void buf_json_string(struct buf *b, const char *s)
{
	buf_add(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			char esc[2] = { '\\', (char)*p };
			buf_add(b, esc, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			buf_fmt(b, "\\u%04x", *p);
		} else if (*p >= 0x80) {
			buf_add(b, "?", 1);
		} else {
			buf_add(b, (const char *)p, 1);
		}
	}
	buf_add(b, "\"", 1);
}

static void buf_step(struct buf *b, const struct step_result *r)
{
	if (!r->present) {
		buf_add(b, "null", 4);
		return;
	}
	if (r->exited)
		buf_fmt(b, "{\"exit_code\":%d,\"signal\":null", r->exit_code);
	else
		buf_fmt(b, "{\"exit_code\":null,\"signal\":%d", r->signal);
	buf_fmt(b, ",\"timed_out\":%s,\"output_limited\":%s,\"warm\":%s", r->timed_out ? "true" : "false",
		r->output_limited ? "true" : "false", r->warm ? "true" : "false");
	buf_fmt(b, ",\"wall_ms\":%llu,\"cpu_ms\":%llu,\"max_rss_kb\":%llu", (unsigned long long)r->wall_ms,
		(unsigned long long)r->cpu_ms, (unsigned long long)r->max_rss_kb);
	buf_fmt(b, ",\"stdout_bytes\":%llu,\"stderr_bytes\":%llu}", (unsigned long long)r->stdout_bytes,
		(unsigned long long)r->stderr_bytes);
}

static bool send_result(const struct step_result *compile, const struct step_result *run, bool pids_limited,
			bool oom_killed)
{
	struct buf b = { 0 };
	buf_add(&b, (const char *)req.nonce, NONCE_LEN); /* zeros when the request had none */
	buf_add(&b, "{\"error\":", 9);
	if (have_error)
		buf_json_string(&b, error_buf);
	else
		buf_add(&b, "null", 4);
	buf_add(&b, ",\"compile\":", 11);
	buf_step(&b, compile);
	buf_add(&b, ",\"run\":", 7);
	buf_step(&b, run);
	buf_fmt(&b, ",\"pids_limited\":%s,\"oom_killed\":%s}", pids_limited ? "true" : "false",
		oom_killed ? "true" : "false");
	send_frame(FRAME_RESULT, b.p, b.n);
	free(b.p);
	return !out_broken;
}

/* ------------------------------------------------------------------------------------------ */

/*
 * After the result: stay until the host closes stdin (or LINGER_MS pass). The container's teardown
 * costs dockerd more CPU than a short job; starting it once the host has answered keeps it off the
 * answer's path. Every process but this one is gone already.
 */
static void linger(void)
{
	uint64_t deadline = now_ms() + LINGER_MS;
	unsigned char buf[256];
	for (uint64_t t = now_ms(); t < deadline; t = now_ms()) {
		struct pollfd pfd = { .fd = 0, .events = POLLIN };
		int pr = poll(&pfd, 1, (int)(deadline - t));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			return;
		ssize_t n = read(0, buf, sizeof buf);
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			return;
	}
}

/* --env KEY=VALUE... --warm ARGV...; false with the error set on anything else. */
static bool parse_options(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--env") == 0 && i + 1 < argc) {
			char *eq = strchr(argv[i + 1], '=');
			if (!eq || eq == argv[i + 1]) {
				set_error("--env must be KEY=VALUE");
				return false;
			}
			strv_push(&warm.env, argv[++i]);
		} else if (strcmp(argv[i], "--warm") == 0 && i + 1 < argc) {
			warm.argv = argv + i + 1;
			return true;
		} else {
			set_error("unknown option: %.100s", argv[i]);
			return false;
		}
	}
	return true;
}

int main(int argc, char **argv)
{
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	umask(022);

	/* fds 0-2 must exist so that pipes and files never land on them. */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			return 71;
	signal(SIGPIPE, SIG_IGN); /* a vanished host shows up as EPIPE, not as death */
	signal(SIGXFSZ, SIG_IGN); /* RLIMIT_FSIZE shows up as EFBIG */

	struct step_result compile = { 0 }, run = { 0 };

	if (getpid() != 1) {
		/* kill(-1) is only safe as PID 1 of the sandbox's own PID namespace. */
		set_error("bd-supervisor must run as PID 1 of its container");
		send_result(&compile, &run, false, false);
		return 2;
	}

	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	sig_fd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sig_fd < 0)
		set_error("signalfd: %s", strerror(errno));

	if (!have_error)
		parse_options(argc, argv);
	if (!have_error && mkdir(WORK_DIR, 0755) != 0 && errno != EEXIST)
		set_error("cannot create " WORK_DIR ": %s", strerror(errno));
	if (!have_error && chdir(WORK_DIR) != 0)
		set_error("cannot enter " WORK_DIR ": %s", strerror(errno));
	/* The interpreter starts while the host is still writing (or has not yet sent) the request. */
	if (!have_error && warm.argv)
		start_warm();

	long long pids_before = -1, oom_before = -1;
	if (!have_error && read_request()) {
		int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		/* Only the job's own processes count: the warm interpreter's start-up came before. */
		bool use_warm = req.run_warm && req.compile_argv.n == 0 && warm_alive();
		if (!use_warm)
			stop_warm();
		pids_before = pids_max_events();
		oom_before = oom_kills();
		if (null_fd < 0) {
			set_error("cannot open /dev/null: %s", strerror(errno));
		} else {
			bool go = true;
			if (req.compile_argv.n > 0) {
				run_step(req.compile_argv.v, req.compile_timeout_ms, null_fd, true, &compile);
				go = step_ok(&compile) && !have_error;
				if (go && req.pause_after_compile) {
					send_frame(FRAME_COMPILED, NULL, 0);
					unsigned char answer = 0;
					ssize_t n = read_full(0, &answer, 1);
					if (n != 1 || answer != 0x01) {
						set_error(n == 1 ? "unexpected answer to COMPILED"
								 : "no answer to COMPILED");
						go = false;
					}
				}
			}
			if (go && !(use_warm && run_warm(req.run_argv.v, req.run_timeout_ms, &run)))
				run_step(req.run_argv.v, req.run_timeout_ms, req.stdin_fd >= 0 ? req.stdin_fd : null_fd,
					 false, &run);
		}
	}

	long long pids_after = pids_max_events();
	long long oom_after = oom_kills();
	bool pids_limited = pids_before >= 0 && pids_after > pids_before;
	bool oom_killed = oom_before >= 0 && oom_after > oom_before;
	if (!send_result(&compile, &run, pids_limited, oom_killed))
		return 1;
	linger();
	return 0;
}
