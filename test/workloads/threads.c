/* pthreads (glibc tries clone3 first and falls back to clone on ENOSYS), posix_spawn, fork + exec. */
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static long total;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *work(void *arg)
{
	pthread_mutex_lock(&lock);
	total += (long)arg;
	pthread_mutex_unlock(&lock);
	return NULL;
}

int main(void)
{
	pthread_t t[8];
	for (long i = 0; i < 8; i++)
		if (pthread_create(&t[i], NULL, work, (void *)i) != 0)
			return 1;
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	pid_t pid;
	char *argv[] = { "true", NULL };
	int spawned = posix_spawnp(&pid, "true", NULL, NULL, argv, environ);
	int status = -1;
	if (spawned == 0)
		waitpid(pid, &status, 0);
	pid_t child = fork();
	if (child == 0) {
		execlp("true", "true", (char *)NULL);
		_exit(127);
	}
	int forked = -1;
	waitpid(child, &forked, 0);
	printf("threads %ld spawn %d/%d fork %d\n", total, spawned, status, forked);
	puts("ok c");
	return 0;
}
