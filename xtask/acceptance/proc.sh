# /proc as procps and busybox read it: ps, top, free, uptime, the maps of a process.
. /acceptance/lib

check "/proc lists process 1" test -d /proc/1
expect "/proc/self is the process reading it" "$(sh -c 'echo $$; exec readlink /proc/self' | uniq | wc -l)" 1
check "cat /proc/self/maps shows the stack" sh -c 'cat /proc/self/maps | grep -q "\[stack\]"'
check "cat /proc/self/maps shows cat itself" sh -c 'cat /proc/self/maps | grep -q "/cat$"'
check "/proc/self/stat names the program" sh -c 'cat /proc/self/stat | grep -q "^[0-9]* (cat) "'
check "/proc/PID/statm has seven numbers" sh -c 'cat /proc/self/statm | grep -Eq "^([0-9]+ ){6}[0-9]+$"' 
check "/proc/meminfo has MemTotal" grep -q '^MemTotal: ' /proc/meminfo
check "/proc/stat has the CPU line" grep -q '^cpu ' /proc/stat
check "/proc/uptime has two numbers" grep -Eq '^[0-9]+\.[0-9]+ [0-9]+\.[0-9]+$' /proc/uptime
check "/proc/cpuinfo has processors" grep -q '^processor' /proc/cpuinfo
expect "nproc counts the CPUs /proc/cpuinfo lists" "$(nproc)" "$(grep -c '^processor' /proc/cpuinfo)"
check "ls /proc | head" sh -c 'ls /proc | head | grep -q .'
check "ps lists this shell" sh -c "ps -e -o pid= | grep -qw $$"
check "ps aux" sh -c 'ps aux > /tmp/ps.out && grep -q "ps aux" /tmp/ps.out'
rm -f /tmp/ps.out
check "top -b -n 1" sh -c 'top -b -n 1 > /tmp/top.out 2>&1; s=$?; grep -q "PID" /tmp/top.out || { cat /tmp/top.out; echo "top: status $s"; exit 1; }' 
check "free" sh -c 'free | grep -q "^Mem:"'
check "uptime" sh -c 'uptime | grep -q "load average"'
check "pidof finds a sleeper" sh -c 'sleep 30 & p=$!; pidof sleep | grep -qw $p; s=$?; kill $p; exit $s'
check "/proc/PID/status of a child" sh -c 'sleep 5 & p=$!; grep -q "^State:" /proc/$p/status; s=$?; kill $p; exit $s'
# The child has run sleep once /proc/PID/comm says so.
check "/proc/PID/cmdline of a child" sh -c 'sleep 5 & p=$!; until [ "$(cat /proc/$p/comm)" = sleep ]; do :; done; [ "$(tr "\0" " " < /proc/$p/cmdline)" = "sleep 5 " ]; s=$?; kill $p; exit $s'
finish
