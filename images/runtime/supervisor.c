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
 * instead of starting the interpreter cold, once the interpreter has acknowledged that it took the
 * job. See "Warm interpreters" in docs/protocol.md.
 *
 * Started as root (User 0 with only CAP_SETUID and CAP_SETGID), it becomes uid SUPERVISOR_UID at once
 * and runs every step as PROGRAM_UID: the program cannot signal, renice or change the limits of the
 * supervisor at all. Started as any other user (today's User 65534), the program shares its uid and the
 * supervisor defends itself instead: seccomp (config/seccomp.json) refuses prlimit on it, and it checks
 * its own resource limits while a step runs. Whatever it must do before a step runs (identity, limits,
 * descriptors, oom_score_adj, exec) either succeeds or no program runs and the RESULT's error says why.
 * See "Identity and self-defence" in docs/protocol.md.
 *
 * Language-agnostic, libc only, gnu11. Built inside the image by images/runtime/setup.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
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
#include <sys/fsuid.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
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
/* While a step runs, how often the supervisor checks that its own resource limits are untouched. */
#define LIMIT_CHECK_MS 100
/* How long a warm interpreter may take to acknowledge its job (bounded by half the run timeout). */
#define WARM_ACK_MS 2000
/* The byte a warm interpreter's loader writes on fd 3 once it has read its argv: "I run it now". */
#define WARM_ACK 0x06
/* The RESULT payload is built in a static buffer: it must be sent even when malloc no longer can. */
#define RESULT_MAX 8192

/* Identities when started as root (the own-uid mode); otherwise everything keeps the container's user. */
#define SUPERVISOR_UID 65533
#define SUPERVISOR_GID 65533
#define PROGRAM_UID 65534
#define PROGRAM_GID 65534
/* The capabilities the supervisor keeps in the own-uid mode: to give each step the program's identity. */
#define KEEP_CAPS ((1ull << CAP_SETUID) | (1ull << CAP_SETGID))

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
	TAG_RUN_ADDRESS_SPACE_MB = 0x33,
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
	uint32_t run_address_space_mb; /* RLIMIT_AS of the run step; 0: none */
	bool have_run_address_space;
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
/* Started as root: the supervisor runs as SUPERVISOR_UID, every step as PROGRAM_UID (see main). */
static bool own_uid;
/* A kernel without setfsuid (gVisor): the supervisor takes PROGRAM_UID as effective uid, which the
 * file-system uid follows, while it creates what the program will own (see creating_for_program). */
static bool fs_ids_via_effective;
/* A failure before the request: it is still read (for its nonce, so the host accepts the RESULT), but
 * its files and stdin are discarded and nothing runs. */
static bool discard_request;
static struct step_result compile_res, run_res;
/* The cgroup counters, opened at start: reading them after the run step needs no new descriptor. */
static int pids_events_fd = -1, oom_control_fd = -1;

static void out_of_memory(void) __attribute__((noreturn));

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
	if (!q)
		out_of_memory(); /* still answers: the RESULT is built without malloc */
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

/* Opens the first of two counter files that exists (cgroup v1, then v2); -1 when neither does. */
static int open_counter(const char *v1, const char *v2)
{
	int fd = open(v1, O_RDONLY | O_CLOEXEC);
	return fd >= 0 ? fd : open(v2, O_RDONLY | O_CLOEXEC);
}

/* Reads `key N` from a counter file opened at start (pread from 0: the same fd serves every read). */
static long long read_counter(int fd, const char *key)
{
	if (fd < 0)
		return -1;
	char buf[4096];
	ssize_t n;
	while ((n = pread(fd, buf, sizeof buf - 1, 0)) < 0 && errno == EINTR) {
	}
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

static void open_counters(void)
{
	pids_events_fd = open_counter("/sys/fs/cgroup/pids/pids.events", "/sys/fs/cgroup/pids.events");
	oom_control_fd = open_counter("/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events");
}

static long long pids_max_events(void)
{
	return read_counter(pids_events_fd, "max");
}

static long long oom_kills(void)
{
	return read_counter(oom_control_fd, "oom_kill");
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
			if (discard_request) {
				free(file_name);
				file_name = NULL;
				if (!copy_value(len, -1, "FILE_DATA"))
					goto fail;
				break;
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
		case TAG_RUN_ADDRESS_SPACE_MB:
			if (!read_u32(len, &req.run_address_space_mb, &req.have_run_address_space, "RUN_ADDRESS_SPACE_MB"))
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
			if (discard_request) {
				if (!copy_value(len, -1, "STDIN"))
					goto fail;
				break;
			}
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

/* ------------------------------------------------------------------------------------------ */
/* identity: the own-uid mode */

static int capget_raw(uint64_t *eff, uint64_t *perm, uint64_t *inh)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	if (syscall(SYS_capget, &hdr, data) != 0)
		return -1;
	*eff = (uint64_t)data[1].effective << 32 | data[0].effective;
	*perm = (uint64_t)data[1].permitted << 32 | data[0].permitted;
	*inh = (uint64_t)data[1].inheritable << 32 | data[0].inheritable;
	return 0;
}

static int capset_raw(uint64_t eff, uint64_t perm, uint64_t inh)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2] = {
		{ .effective = (uint32_t)eff, .permitted = (uint32_t)perm, .inheritable = (uint32_t)inh },
		{ .effective = (uint32_t)(eff >> 32), .permitted = (uint32_t)(perm >> 32), .inheritable = (uint32_t)(inh >> 32) },
	};
	return (int)syscall(SYS_capset, &hdr, data);
}

/*
 * Clears the ambient capability set. EINVAL means ambient capabilities do not exist here (gVisor's
 * kernel, a kernel before 4.3): then there are none to clear, which is the point.
 */
static bool clear_ambient_caps(void)
{
	return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == 0 || errno == EINVAL;
}

/* Real and saved ids uid:gid, effective ids euid:egid, no supplementary groups. */
static bool ids_are(uid_t uid, uid_t euid, gid_t gid, gid_t egid)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;
	return getresuid(&r, &e, &s) == 0 && r == uid && e == euid && s == uid && getresgid(&rg, &eg, &sg) == 0 &&
	       rg == gid && eg == egid && sg == gid && getgroups(0, NULL) == 0;
}

/*
 * Makes PROGRAM_UID:PROGRAM_GID the owner of what the supervisor creates. Where setfsuid does not exist
 * (ENOSYS: gVisor) it is creating_for_program's work instead.
 */
static void use_program_fs_ids(void)
{
	errno = 0;
	if ((int)setfsuid(PROGRAM_UID) == -1 && errno == ENOSYS) {
		fs_ids_via_effective = true;
		return;
	}
	setfsgid(PROGRAM_GID);
}

/*
 * Where setfsuid does not exist (gVisor), the supervisor takes the program's ids as effective ids while
 * it creates what the program must own (the work directory, its files, stdin, a step's pipes), and only
 * while no program of the job runs: otherwise its effective uid would let the program signal, trace or
 * limit it. Capabilities survive a change between two non-zero uids. Calls nest: only the outermost
 * pair changes ids.
 */
static void creating_for_program(bool on)
{
	/* Nested uses (spawn's pipes while the request's files are being created) keep the outer one's ids. */
	static int depth;
	if (!fs_ids_via_effective || (on ? depth++ > 0 : --depth > 0))
		return;
	if (setresgid((gid_t)-1, on ? PROGRAM_GID : SUPERVISOR_GID, (gid_t)-1) != 0 ||
	    setresuid((uid_t)-1, on ? PROGRAM_UID : SUPERVISOR_UID, (uid_t)-1) != 0)
		set_error("cannot %s the program's ids to create its files: %s", on ? "take" : "leave", strerror(errno));
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* credential changes reset it */
}

/*
 * Started as root: become SUPERVISOR_UID:SUPERVISOR_GID with no supplementary groups, keeping CAP_SETUID
 * and CAP_SETGID only (to give each step PROGRAM_UID), with PROGRAM_UID as the file-system uid so that the
 * files, pipes and work directory it creates belong to the program, as they did when both shared a uid.
 * Started as anyone else: nothing to do (the shared-uid mode). False, with the error set, on any failure:
 * then no program runs.
 */
static bool setup_identity(void)
{
	if (getuid() != 0 && geteuid() != 0)
		return true;
	own_uid = true;
	const char *step = "setgroups";
	if (setgroups(0, NULL) != 0)
		goto fail;
	step = "setresgid";
	if (setresgid(SUPERVISOR_GID, SUPERVISOR_GID, SUPERVISOR_GID) != 0)
		goto fail;
	step = "prctl(PR_SET_KEEPCAPS)";
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0)
		goto fail;
	step = "setresuid";
	if (setresuid(SUPERVISOR_UID, SUPERVISOR_UID, SUPERVISOR_UID) != 0)
		goto fail;
	prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	step = "capset (needs CAP_SETUID and CAP_SETGID: CapAdd SETUID, SETGID)";
	if (capset_raw(KEEP_CAPS, KEEP_CAPS, 0) != 0)
		goto fail;
	step = "prctl(PR_CAP_AMBIENT_CLEAR_ALL)";
	if (!clear_ambient_caps())
		goto fail;
	use_program_fs_ids();
	uint64_t eff, perm, inh;
	errno = EPERM;
	step = "verifying the result";
	if (!ids_are(SUPERVISOR_UID, SUPERVISOR_UID, SUPERVISOR_GID, SUPERVISOR_GID) || capget_raw(&eff, &perm, &inh) != 0 || eff != KEEP_CAPS || perm != KEEP_CAPS || inh != 0 ||
	    (!fs_ids_via_effective &&
	     ((uid_t)setfsuid((uid_t)-1) != PROGRAM_UID || (gid_t)setfsgid((gid_t)-1) != PROGRAM_GID)))
		goto fail;
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* credential changes reset it */
	return true;
fail:
	set_error("started as root, cannot become uid %d: %s: %s", SUPERVISOR_UID, step, strerror(errno));
	return false;
}

/* In the own-uid mode, only PROGRAM_UID may signal the program's processes: take it as effective uid. */
static void as_program(bool on)
{
	if (!own_uid)
		return;
	if (setresuid((uid_t)-1, on ? PROGRAM_UID : SUPERVISOR_UID, (uid_t)-1) != 0)
		set_error("cannot %s the program's uid to signal it: %s", on ? "take" : "leave", strerror(errno));
	setfsuid(PROGRAM_UID); /* setresuid moved it along with the effective uid */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* SIGKILL to every process of the container but ourselves (we are PID 1 of its PID namespace). */
static void kill_everything(void)
{
	as_program(true);
	kill(-1, SIGKILL);
	as_program(false);
}

/* ------------------------------------------------------------------------------------------ */
/* the supervisor's own resource limits: a program sharing its uid could lower them (prlimit) */

static const char *const rlimit_names[RLIM_NLIMITS] = {
	[RLIMIT_CPU] = "RLIMIT_CPU",	       [RLIMIT_FSIZE] = "RLIMIT_FSIZE",     [RLIMIT_DATA] = "RLIMIT_DATA",
	[RLIMIT_STACK] = "RLIMIT_STACK",       [RLIMIT_CORE] = "RLIMIT_CORE",	    [RLIMIT_RSS] = "RLIMIT_RSS",
	[RLIMIT_NPROC] = "RLIMIT_NPROC",       [RLIMIT_NOFILE] = "RLIMIT_NOFILE",   [RLIMIT_MEMLOCK] = "RLIMIT_MEMLOCK",
	[RLIMIT_AS] = "RLIMIT_AS",	       [RLIMIT_LOCKS] = "RLIMIT_LOCKS",	    [RLIMIT_SIGPENDING] = "RLIMIT_SIGPENDING",
	[RLIMIT_MSGQUEUE] = "RLIMIT_MSGQUEUE", [RLIMIT_NICE] = "RLIMIT_NICE",	    [RLIMIT_RTPRIO] = "RLIMIT_RTPRIO",
	[RLIMIT_RTTIME] = "RLIMIT_RTTIME",
};
static struct rlimit limits_at_start[RLIM_NLIMITS];

static bool snapshot_limits(void)
{
	for (int r = 0; r < RLIM_NLIMITS; r++) {
		if (getrlimit(r, &limits_at_start[r]) != 0) {
			set_error("getrlimit(%s): %s", rlimit_names[r], strerror(errno));
			return false;
		}
	}
	return true;
}

static void format_limit(char *out, size_t size, rlim_t v)
{
	if (v == RLIM_INFINITY)
		snprintf(out, size, "unlimited");
	else
		snprintf(out, size, "%llu", (unsigned long long)v);
}

/*
 * Sets the error when a limit differs from the start (`what` says what happens now) and returns false.
 * No allocation and no new descriptor: it works whatever limit was lowered.
 */
static bool limits_intact(const char *what)
{
	for (int r = 0; r < RLIM_NLIMITS; r++) {
		struct rlimit now;
		if (getrlimit(r, &now) != 0) {
			set_error("getrlimit(%s): %s; %s", rlimit_names[r], strerror(errno), what);
			return false;
		}
		const struct rlimit *was = &limits_at_start[r];
		if (now.rlim_cur == was->rlim_cur && now.rlim_max == was->rlim_max)
			continue;
		char a[24], b[24], c[24], d[24];
		format_limit(a, sizeof a, was->rlim_cur), format_limit(b, sizeof b, was->rlim_max);
		format_limit(c, sizeof c, now.rlim_cur), format_limit(d, sizeof d, now.rlim_max);
		set_error("the supervisor's %s was changed from %s/%s to %s/%s (prlimit on PID 1); %s", rlimit_names[r], a, b, c,
			  d, what);
		return false;
	}
	return true;
}

/*
 * Grows the stack mapping once, at start: if a program later lowers RLIMIT_STACK, the supervisor's
 * stack never needs to grow again (its deepest path is far below this).
 */
static __attribute__((noinline)) void prefault_stack(void)
{
	volatile unsigned char pad[256 * 1024];
	for (size_t i = 0; i < sizeof pad; i += 4096)
		pad[i] = 0;
	pad[sizeof pad - 1] = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* starting a step: fork, then in the child everything must succeed before exec, or nothing runs */

/* In the child: says what failed on the status pipe (read by spawn()) and ends. */
static __attribute__((noreturn)) void child_fail(int status_fd, const char *what, int err)
{
	char msg[512];
	int len = snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
	if (len > 0) {
		ssize_t ignored = write(status_fd, msg, (size_t)len < sizeof msg ? (size_t)len : sizeof msg - 1);
		(void)ignored;
	}
	_exit(127);
}

/* Marks every descriptor from `lowest` up close-on-exec: they are gone when the step's program starts. */
static int cloexec_from(int lowest)
{
	if (syscall(SYS_close_range, (unsigned)lowest, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */) == 0)
		return 0;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	long max = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (1u << 20) ? (1l << 20) : (long)rl.rlim_max;
	for (long fd = lowest; fd < max; fd++)
		if (fcntl((int)fd, F_SETFD, FD_CLOEXEC) != 0 && errno != EBADF)
			return -1;
	return 0;
}

/*
 * The child of spawn(). ctl_fd >= 0 becomes its fd 3 (a warm interpreter's control socket); nothing else
 * of the supervisor's passes exec. address_space > 0 becomes its RLIMIT_AS, in bytes. Any failure before
 * exec (exec's own included) is reported on status_fd and ends the child with no program run.
 */
static __attribute__((noreturn)) void child_exec(char **argv, char **envp, int in_fd, int out_fd, int err_fd, int ctl_fd,
						  rlim_t address_space, int status_fd)
{
	/* Above fd 3 so that the dup2 calls below cannot land on it. */
	int st = fcntl(status_fd, F_DUPFD_CLOEXEC, 4);
	if (st < 0)
		child_fail(status_fd, "fcntl(F_DUPFD_CLOEXEC)", errno);
	if (setpgid(0, 0) != 0)
		child_fail(st, "setpgid", errno);
	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
		child_fail(st, "dup2", errno);
	if (ctl_fd >= 0 && (ctl_fd == 3 ? fcntl(3, F_SETFD, 0) : dup2(ctl_fd, 3)) < 0) /* dup2 onto itself would keep FD_CLOEXEC */
		child_fail(st, "dup2 (fd 3)", errno);
	if (cloexec_from(ctl_fd >= 0 ? 4 : 3) != 0)
		child_fail(st, "closing the supervisor's descriptors", errno);
	if (own_uid) {
		/* The program's identity, and not one capability: permitted, effective, inheritable, ambient. */
		if (setgroups(0, NULL) != 0)
			child_fail(st, "setgroups", errno);
		if (setresgid(PROGRAM_GID, PROGRAM_GID, PROGRAM_GID) != 0)
			child_fail(st, "setresgid", errno);
		if (setresuid(PROGRAM_UID, PROGRAM_UID, PROGRAM_UID) != 0)
			child_fail(st, "setresuid", errno);
		if (capset_raw(0, 0, 0) != 0)
			child_fail(st, "capset", errno);
		if (!clear_ambient_caps())
			child_fail(st, "prctl(PR_CAP_AMBIENT_CLEAR_ALL)", errno);
		uint64_t eff, perm, inh;
		if (!ids_are(PROGRAM_UID, PROGRAM_UID, PROGRAM_GID, PROGRAM_GID) || capget_raw(&eff, &perm, &inh) != 0 || eff || perm || inh)
			child_fail(st, "verifying the program's identity", EPERM);
	}
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		child_fail(st, "no_new_privs is not set", EPERM);
	/* No core dumps, whatever the container's ulimits say (Docker's core=0 is the first line). */
	struct rlimit no_core = { 0, 0 };
	if (setrlimit(RLIMIT_CORE, &no_core) != 0)
		child_fail(st, "setrlimit(RLIMIT_CORE)", errno);
	struct rlimit as = { address_space, address_space };
	if (address_space > 0 && setrlimit(RLIMIT_AS, &as) != 0)
		child_fail(st, "setrlimit(RLIMIT_AS)", errno);
	/* Nothing of the supervisor's is left in this process but memory: forget the nonce, then become
	 * dumpable again (execve would do so anyway). A non-dumpable process's /proc/self files belong to
	 * root, which would make the oom_score_adj write below fail. */
	explicit_bzero(req.nonce, sizeof req.nonce);
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0)
		child_fail(st, "prctl(PR_SET_DUMPABLE)", errno);
	/* The OOM killer must take the user's processes, never the supervisor. */
	int adj = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (adj < 0 || write(adj, "1000", 4) != 4)
		child_fail(st, "raising oom_score_adj", errno);
	close(adj);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL); /* fails harmlessly for SIGKILL, SIGSTOP and glibc's own */
	sigset_t none;
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) != 0)
		child_fail(st, "sigprocmask", errno);
	extern char **environ;
	environ = envp;
	execvp(argv[0], argv);
	char what[320];
	snprintf(what, sizeof what, "cannot execute %.300s", argv[0]);
	child_fail(st, what, errno);
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
 * fd 3 when >= 0), and waits until it has exec'd. Returns its pid, or -1 with `why` saying what failed
 * (in the supervisor or in the child before exec): then no program runs.
 */
static pid_t spawn(char **argv, char **envp, int in_fd, int ctl_fd, rlim_t address_space, int *out_fd, int *err_fd, char *why,
		   size_t why_size)
{
	int out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 }, status[2] = { -1, -1 };
	const char *failed = "pipe";
	creating_for_program(true); /* the program may reopen them (/dev/stdout) */
	bool piped = pipe2(out_pipe, O_CLOEXEC) == 0 && pipe2(err_pipe, O_CLOEXEC) == 0 && pipe2(status, O_CLOEXEC) == 0;
	creating_for_program(false);
	if (!piped || have_error)
		goto fail;
	failed = "fork";
	pid_t child = fork();
	if (child < 0)
		goto fail;
	if (child == 0)
		child_exec(argv, envp, in_fd, out_pipe[1], err_pipe[1], ctl_fd, address_space, status[1]);
	close(out_pipe[1]), close(err_pipe[1]), close(status[1]);
	/* EOF: the status pipe closed on exec. Bytes: the child's last words before _exit(127). */
	size_t got = 0;
	for (;;) {
		ssize_t n = read(status[0], why + got, why_size - 1 - got);
		if (n > 0 && (got += (size_t)n) < why_size - 1)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
	close(status[0]);
	if (got > 0) {
		why[got] = '\0';
		while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {
		}
		close(out_pipe[0]), close(err_pipe[0]);
		return -1;
	}
	fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
	fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);
	*out_fd = out_pipe[0];
	*err_fd = err_pipe[0];
	return child;
fail:
	snprintf(why, why_size, "%s: %s", failed, strerror(errno));
	int *fds[] = { &out_pipe[0], &out_pipe[1], &err_pipe[0], &err_pipe[1], &status[0], &status[1] };
	for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
	return -1;
}

static void supervise(pid_t child, int out_fd, int err_fd, uint64_t start, uint32_t timeout_ms, bool compile,
		      struct step_result *res);

/* A cold step. On any failure to start it, the error is set and the step stays absent (null). */
static void run_step(char **argv, uint32_t timeout_ms, int in_fd, bool compile, struct step_result *res)
{
	memset(res, 0, sizeof *res);
	char **envp = make_env(&req.env);
	int out_fd, err_fd;
	char why[512];
	uint64_t start = now_ms();
	rlim_t address_space = compile ? 0 : (rlim_t)req.run_address_space_mb << 20;
	pid_t child = spawn(argv, envp, in_fd, -1, address_space, &out_fd, &err_fd, why, sizeof why);
	free(envp);
	if (child < 0) {
		set_error("the %s step could not be started: %s", compile ? "compile" : "run", why);
		return;
	}
	res->present = true;
	supervise(child, out_fd, err_fd, start, timeout_ms, compile, res);
}

/* ------------------------------------------------------------------------------------------ */
/* a growable byte buffer (the warm interpreter's argv) */

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

/*
 * Starts --warm ARGV with one end of a socket pair as its fd 3 (the control socket: the job's argv
 * comes down it, the loader's acknowledgement goes up). A failure only means the run step starts cold.
 */
static void start_warm(void)
{
	int ctl[2];
	warm.stdin_fd = open_tmpfile();
	if (warm.stdin_fd < 0)
		return;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) != 0)
		return;
	char **envp = make_env(&warm.env);
	char why[512];
	pid_t child = spawn(warm.argv, envp, warm.stdin_fd, ctl[1], 0, &warm.out_fd, &warm.err_fd, why, sizeof why);
	free(envp);
	close(ctl[1]);
	if (child < 0) {
		close(ctl[0]);
		return;
	}
	fcntl(ctl[0], F_SETFL, O_NONBLOCK);
	warm.ctl_fd = ctl[0];
	warm.pid = child;
}

/* Ends the warm interpreter (unused, or dead already) and closes its pipes; its stdin file stays. */
static void stop_warm(void)
{
	if (warm.pid > 0) {
		as_program(true);
		kill(-warm.pid, SIGKILL);
		kill(warm.pid, SIGKILL);
		as_program(false);
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
 * After the job's argv went down the control socket: waits until `deadline` for the loader's one-byte
 * acknowledgement. True only for WARM_ACK; EOF (the interpreter closed fd 3 or died, with or without
 * reading), any other byte, its death or the deadline mean it did not take the job.
 */
static bool warm_took_job(uint64_t deadline)
{
	for (;;) {
		unsigned char b;
		ssize_t n = read(warm.ctl_fd, &b, 1);
		if (n == 1)
			return b == WARM_ACK;
		if (n == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK))
			return false;
		uint64_t t = now_ms();
		if (t >= deadline)
			return false;
		struct pollfd pfd[2] = { { .fd = warm.ctl_fd, .events = POLLIN }, { .fd = sig_fd, .events = POLLIN } };
		if (poll(pfd, 2, (int)(deadline - t)) > 0 && pfd[1].revents) {
			drain_signalfd();
			if (!warm_alive())
				return false;
		}
	}
}

/*
 * The run step in the warm interpreter: its argv goes down fd 3 as NUL-terminated strings, then the
 * supervisor shuts its side for writing (EOF); the loader answers WARM_ACK before it runs the program,
 * and from then on it is supervised like a cold step. Returns false when the interpreter did not take
 * the job (it died, exited, or did not answer within WARM_ACK_MS): it is killed, and the caller runs
 * the step cold. A program that did not run is never reported as a warm run.
 */
static bool run_warm(char **argv, uint32_t timeout_ms, struct step_result *res)
{
	struct buf msg = { 0 };
	for (char **a = argv; *a; a++)
		buf_add(&msg, *a, strlen(*a) + 1); /* with its NUL */
	uint64_t start = now_ms();
	uint64_t ack_deadline = start + (timeout_ms / 2 < WARM_ACK_MS ? timeout_ms / 2 : WARM_ACK_MS);
	bool sent = write_until(warm.ctl_fd, msg.p, msg.n, ack_deadline);
	free(msg.p);
	if (!sent || shutdown(warm.ctl_fd, SHUT_WR) != 0 || !warm_took_job(ack_deadline)) {
		stop_warm();
		return false;
	}
	close(warm.ctl_fd);
	warm.ctl_fd = -1;
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
	uint64_t next_check = start + LIMIT_CHECK_MS;
	static unsigned char buf[CHUNK];
	const char *stopped = compile ? "the compile step was stopped" : "the run step was stopped";

	for (;;) {
		reap(child, &child_done, &status, &ru, &end_ms);
		if (child_done && !killed) {
			/* The step is over: nothing it started may outlive it. */
			kill_everything();
			killed = true;
		}
		if (!killed && now_ms() >= next_check) {
			/* A process sharing our uid may have lowered our limits (a poll on 3 fds fails once
			 * RLIMIT_NOFILE < 3, a low RLIMIT_CPU would kill us): stop the step before it matters. */
			next_check = now_ms() + LIMIT_CHECK_MS;
			if (!limits_intact(stopped)) {
				kill_everything();
				killed = true;
			}
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
		if (!killed && until > next_check)
			until = next_check;
		struct pollfd pfd[3];
		int nfds = 0;
		pfd[nfds++] = (struct pollfd){ .fd = sig_fd, .events = POLLIN };
		for (int i = 0; i < 2; i++)
			pfd[nfds++] = (struct pollfd){ .fd = streams[i].fd, .events = POLLIN }; /* fd -1 is skipped */
		int wait = (int)(until > t ? until - t : 0);
		int pr = poll(pfd, (nfds_t)nfds, wait);
		if (pr < 0 && errno != EINTR) {
			int e = errno;
			limits_intact(stopped); /* the likely cause, if it is one */
			set_error("poll: %s", strerror(e));
			kill_everything();
			killed = true;
			/* Without poll: keep what the killed processes left in the pipes (read until empty). */
			for (int i = 0; i < 2; i++) {
				struct stream *s = &streams[i];
				ssize_t n;
				int reads = 0; /* bounded: a dying writer cannot keep us here */
				while (s->fd >= 0 && reads++ < 64 &&
				       ((n = read(s->fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))) {
					if (n <= 0 || !counting)
						continue;
					*s->count += (uint64_t)n;
					if (s->kept < req.output_keep) {
						uint64_t room = req.output_keep - s->kept;
						size_t fwd = (uint64_t)n < room ? (size_t)n : (size_t)room;
						send_frame(s->frame, buf, fwd);
						s->kept += fwd;
					}
				}
			}
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
/* the result frame: built in a static buffer, so that it can be sent whatever limit was lowered */

struct rbuf {
	char p[RESULT_MAX];
	size_t n;
};

static void rb_add(struct rbuf *b, const char *s, size_t len)
{
	/* Cannot overflow: the nonce, a 511-byte error escaped 6 bytes a byte and two steps fit. */
	if (b->n + len > sizeof b->p)
		len = sizeof b->p - b->n;
	memcpy(b->p + b->n, s, len);
	b->n += len;
}

static void rb_fmt(struct rbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rb_fmt(struct rbuf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n > 0)
		rb_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string: escapes quotes, backslashes and control bytes; non-ASCII bytes become '?'. */
static void rb_json_string(struct rbuf *b, const char *s)
{
	rb_add(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			char esc[2] = { '\\', (char)*p };
			rb_add(b, esc, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			rb_fmt(b, "\\u%04x", *p);
		} else if (*p >= 0x80) {
			rb_add(b, "?", 1);
		} else {
			rb_add(b, (const char *)p, 1);
		}
	}
	rb_add(b, "\"", 1);
}

static void rb_step(struct rbuf *b, const struct step_result *r)
{
	if (!r->present) {
		rb_add(b, "null", 4);
		return;
	}
	if (r->exited)
		rb_fmt(b, "{\"exit_code\":%d,\"signal\":null", r->exit_code);
	else
		rb_fmt(b, "{\"exit_code\":null,\"signal\":%d", r->signal);
	rb_fmt(b, ",\"timed_out\":%s,\"output_limited\":%s,\"warm\":%s", r->timed_out ? "true" : "false",
	       r->output_limited ? "true" : "false", r->warm ? "true" : "false");
	rb_fmt(b, ",\"wall_ms\":%llu,\"cpu_ms\":%llu,\"max_rss_kb\":%llu", (unsigned long long)r->wall_ms,
	       (unsigned long long)r->cpu_ms, (unsigned long long)r->max_rss_kb);
	rb_fmt(b, ",\"stdout_bytes\":%llu,\"stderr_bytes\":%llu}", (unsigned long long)r->stdout_bytes,
	       (unsigned long long)r->stderr_bytes);
}

static bool send_result(const struct step_result *compile, const struct step_result *run, bool pids_limited,
			bool oom_killed)
{
	static struct rbuf b;
	b.n = 0;
	rb_add(&b, (const char *)req.nonce, NONCE_LEN); /* zeros when the request had none */
	rb_add(&b, "{\"error\":", 9);
	if (have_error)
		rb_json_string(&b, error_buf);
	else
		rb_add(&b, "null", 4);
	rb_add(&b, ",\"compile\":", 11);
	rb_step(&b, compile);
	rb_add(&b, ",\"run\":", 7);
	rb_step(&b, run);
	rb_fmt(&b, ",\"pids_limited\":%s,\"oom_killed\":%s}", pids_limited ? "true" : "false", oom_killed ? "true" : "false");
	send_frame(FRAME_RESULT, b.p, b.n);
	return !out_broken;
}

/* malloc failed (a lowered RLIMIT_AS or RLIMIT_DATA, say): end the job, but with a RESULT that says so. */
static void out_of_memory(void)
{
	set_error("the supervisor ran out of memory");
	kill_everything();
	send_result(&compile_res, &run_res, false, false);
	_exit(1);
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
	signal(SIGXCPU, SIG_IGN); /* a lowered RLIMIT_CPU soft limit (the hard one is caught by limits_intact) */

	if (getpid() != 1) {
		/* kill(-1) is only safe as PID 1 of the sandbox's own PID namespace. */
		set_error("bd-supervisor must run as PID 1 of its container");
		send_result(&compile_res, &run_res, false, false);
		return 2;
	}

	/* Everything the supervisor must have before any program runs; a failure runs nothing. */
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &chld, NULL) != 0)
		set_error("sigprocmask: %s", strerror(errno));
	sig_fd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sig_fd < 0)
		set_error("signalfd: %s", strerror(errno));
	/* Docker's no-new-privileges, once more from here: no step may gain privileges by exec. */
	if (!have_error && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		set_error("cannot set no_new_privs: %s", strerror(errno));
	if (!have_error)
		setup_identity();
	if (!have_error) {
		prefault_stack();
		open_counters();
		snapshot_limits();
	}
	if (!have_error)
		parse_options(argc, argv);
	/* No program of the job runs before the request is read (the warm interpreter waits for it). */
	creating_for_program(true);
	if (!have_error && mkdir(WORK_DIR, 0755) != 0 && errno != EEXIST)
		set_error("cannot create " WORK_DIR ": %s", strerror(errno));
	if (!have_error && chdir(WORK_DIR) != 0)
		set_error("cannot enter " WORK_DIR ": %s", strerror(errno));
	/* The interpreter starts while the host is still writing (or has not yet sent) the request. */
	if (!have_error && warm.argv)
		start_warm();

	long long pids_before = -1, oom_before = -1;
	/* Nothing will run after an error; the request is still read, so that the RESULT carries its nonce. */
	discard_request = have_error;
	bool requested = read_request() && !discard_request;
	creating_for_program(false);
	if (requested && !have_error) {
		int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		/* The warm interpreter was started before any limit of the request's: a run step with one runs cold. */
		bool use_warm = req.run_warm && req.compile_argv.n == 0 && req.run_address_space_mb == 0 && warm_alive();
		if (!use_warm)
			stop_warm();
		/* Only the job's own processes count: the warm interpreter's start-up came before. */
		pids_before = pids_max_events();
		oom_before = oom_kills();
		if (null_fd < 0) {
			set_error("cannot open /dev/null: %s", strerror(errno));
		} else {
			bool go = true;
			if (req.compile_argv.n > 0) {
				go = limits_intact("before the compile step: nothing was run");
				if (go)
					run_step(req.compile_argv.v, req.compile_timeout_ms, null_fd, true, &compile_res);
				go = go && step_ok(&compile_res) && !have_error;
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
			go = go && limits_intact("before the run step: it was not started");
			if (go && use_warm && !run_warm(req.run_argv.v, req.run_timeout_ms, &run_res)) {
				/* The interpreter did not take the job: the program runs cold, from the first byte of
				 * its stdin (the interpreter shared the file's offset). */
				if (req.stdin_fd >= 0 && lseek(req.stdin_fd, 0, SEEK_SET) != 0) {
					set_error("cannot rewind the stdin file: %s", strerror(errno));
					go = false;
				}
				use_warm = false;
			}
			if (go && !use_warm)
				run_step(req.run_argv.v, req.run_timeout_ms, req.stdin_fd >= 0 ? req.stdin_fd : null_fd,
					 false, &run_res);
			/* A change in the last moments of a step, after its last check. */
			if (compile_res.present || run_res.present)
				limits_intact("found after the last step");
		}
	}

	long long pids_after = pids_max_events();
	long long oom_after = oom_kills();
	bool pids_limited = pids_before >= 0 && pids_after > pids_before;
	bool oom_killed = oom_before >= 0 && oom_after > oom_before;
	if (!send_result(&compile_res, &run_res, pids_limited, oom_killed))
		return 1;
	linger();
	return 0;
}
