/* hello-musl / hello-glibc: printf from the main thread and from a second thread (pthread),
 * then join and exit 0. Built static (musl-gcc -static, gcc -static) by `cargo xtask`: a
 * check that a C library's start-up code and its thread creation run on the kernel. */
#include <pthread.h>
#include <stdio.h>

static void *greet(void *arg)
{
	printf("hello from a thread (arg %d)\n", *(int *)arg);
	fflush(stdout);
	return arg;
}

int main(void)
{
	int value = 42;
	void *result = NULL;
	pthread_t thread;

	printf("hello from main\n");
	fflush(stdout);
	if (pthread_create(&thread, NULL, greet, &value) != 0) {
		fprintf(stderr, "pthread_create failed\n");
		return 1;
	}
	if (pthread_join(thread, &result) != 0 || result != &value) {
		fprintf(stderr, "pthread_join failed\n");
		return 1;
	}
	printf("thread joined, bye\n");
	return 0;
}
