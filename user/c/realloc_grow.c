/* realloc-grow-musl / realloc-grow-glibc: grows a buffer from 1 MiB to 256 MiB with realloc,
 * half as much again at each step, filling each new part and checking every byte written so
 * far at every step; prints one result line and exits 0 when the data stayed intact. Both C
 * libraries serve blocks this large with mmap and grow them with mremap, so the kernel moves
 * the pages (not copies them) when the block cannot grow where it is. Built static
 * (musl-gcc -static, gcc -static) by `cargo xtask`. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define MIB ((size_t)1 << 20)

static uint32_t pattern(size_t i)
{
	return (uint32_t)(i * 2654435761u) ^ 0x5a5a5a5au;
}

int main(void)
{
	size_t size = MIB;
	const size_t limit = 256 * MIB;
	uint32_t *buffer = malloc(size);
	int steps = 0;

	if (buffer == NULL) {
		fprintf(stderr, "realloc-grow: malloc of 1 MiB failed\n");
		return 1;
	}
	for (size_t i = 0; i < size / 4; i++)
		buffer[i] = pattern(i);
	while (size < limit) {
		size_t next = size + size / 2;
		if (next > limit)
			next = limit;
		uint32_t *grown = realloc(buffer, next);
		if (grown == NULL) {
			fprintf(stderr, "realloc-grow: realloc to %zu bytes failed\n", next);
			free(buffer);
			return 1;
		}
		buffer = grown;
		for (size_t i = 0; i < size / 4; i++) {
			if (buffer[i] != pattern(i)) {
				fprintf(stderr, "realloc-grow: word %zu wrong after growing to %zu bytes\n",
					i, next);
				return 1;
			}
		}
		for (size_t i = size / 4; i < next / 4; i++)
			buffer[i] = pattern(i);
		size = next;
		steps++;
	}
	for (size_t i = 0; i < size / 4; i++) {
		if (buffer[i] != pattern(i)) {
			fprintf(stderr, "realloc-grow: word %zu wrong at the end\n", i);
			return 1;
		}
	}
	free(buffer);
	printf("realloc-grow: %d steps from 1 MiB to %zu MiB, data intact\n", steps, size / MIB);
	return 0;
}
