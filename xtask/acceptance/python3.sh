# Debian's python3: start-up and the version, threads with ctypes and the mmap module on a
# shared file in /tmp, and a traceback out of the standard library.
. /acceptance/lib

version=$(python3 -c 'import os, sys; print(sys.version)')
status=$?
echo "python3: $version"
expect "python3 -c 'print(sys.version)': exit status" "$status" 0
check "the version is 3.x" sh -c "echo '$version' | grep -q '^3\.[0-9]*\.[0-9]'"

# Four threads each build, sort and check a reversed list (sched_getcpu through ctypes on
# the way), then a file is mapped shared, changed through the map, flushed and read back.
cat > /tmp/threads_mmap.py <<'PYTHON'
import ctypes, mmap, os, threading

THREADS = 4
SIZE = 500000
libc = ctypes.CDLL(None)
results = [None] * THREADS


def work(i):
    numbers = sorted(list(range(i + SIZE - 1, i - 1, -1)))
    cpu = libc.sched_getcpu()
    results[i] = (len(numbers), sum(numbers), numbers[0], numbers[-1], 0 <= cpu < os.cpu_count())


threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
wanted = [(SIZE, SIZE * i + SIZE * (SIZE - 1) // 2, i, i + SIZE - 1, True) for i in range(THREADS)]
assert results == wanted, results

path = "/tmp/mm.bin"
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, b"a" * 8192)
m = mmap.mmap(fd, 8192, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
m[0:5] = b"hello"
m[4096:4101] = b"world"
m.flush()
m.close()
os.lseek(fd, 0, os.SEEK_SET)
back = os.read(fd, 8192)
os.close(fd)
os.unlink(path)
assert back == b"hello" + b"a" * 4091 + b"world" + b"a" * 4091, back[:16]
print("threads+mmap OK:", THREADS, "threads of", SIZE, "ints, 8 KiB mapped shared")
PYTHON
check "threads sorting lists, ctypes, mmap of a shared file" python3 /tmp/threads_mmap.py
rm -f /tmp/threads_mmap.py

python3 -c 'import json; json.loads("{")' > /tmp/traceback.out 2>&1
status=$?
cat /tmp/traceback.out
expect "json.loads(\"{\"): exit status" "$status" 1
check "the traceback starts" grep -q '^Traceback (most recent call last):' /tmp/traceback.out
check "it names json/decoder.py" grep -q 'json/decoder\.py' /tmp/traceback.out
check "it ends with JSONDecodeError" grep -q '^json\.decoder\.JSONDecodeError: ' /tmp/traceback.out
rm -f /tmp/traceback.out
finish
