# /proc as procps and busybox read it: ps, top, free, uptime, the maps of a process.
. /acceptance/lib

check "/proc lists process 1" test -d /proc/1
check "/proc/self is this process" test "$(readlink /proc/self)" = "$$"
check "cat /proc/self/maps shows the stack" grep -q '\[stack\]' /proc/self/maps
check "cat /proc/self/maps shows cat itself" grep -q '/cat$' /proc/self/maps
check "/proc/self/stat names the program" grep -q '^[0-9]* (cat) ' /proc/self/stat
check "/proc/meminfo has MemTotal" grep -q '^MemTotal: ' /proc/meminfo
check "/proc/stat has the CPU line" grep -q '^cpu ' /proc/stat
check "/proc/uptime has two numbers" grep -Eq '^[0-9]+\.[0-9]+ [0-9]+\.[0-9]+$' /proc/uptime
check "/proc/cpuinfo has processors" grep -q '^processor' /proc/cpuinfo
expect "nproc counts the CPUs /proc/cpuinfo lists" "$(nproc)" "$(grep -c '^processor' /proc/cpuinfo)"
check "ls /proc | head" sh -c 'ls /proc | head | grep -q .'
check "ps lists this shell" sh -c "ps -e -o pid= | grep -qw $$"
check "ps aux" sh -c 'ps aux > /tmp/ps.out && grep -q "ps aux" /tmp/ps.out'
rm -f /tmp/ps.out
check "top -b -n 1" sh -c 'top -b -n 1 | grep -q "^ *PID"'
check "free" sh -c 'free | grep -q "^Mem:"'
check "uptime" sh -c 'uptime | grep -q "load average"'
check "pgrep finds a sleeper" sh -c 'sleep 30 & p=$!; pgrep -x sleep | grep -qw $p; s=$?; kill $p; exit $s'
check "kill by name" sh -c 'sleep 30 & p=$!; pkill -x sleep; wait $p; [ $? -eq 143 ]'
check "/proc/PID/status of a child" sh -c 'sleep 5 & p=$!; grep -q "^State:" /proc/$p/status; s=$?; kill $p; exit $s'
check "/proc/PID/cmdline of a child" sh -c 'sleep 5 & p=$!; [ "$(tr "\0" " " < /proc/$p/cmdline)" = "sleep 5 " ]; s=$?; kill $p; exit $s'
finish
