# fork, exec, pipes, redirections, subshells, job control without a terminal, signals.
. /acceptance/lib

expect "a pipe of three programs" "$(seq 1 1000 | grep 7 | wc -l)" 271
expect "echo into wc" "$(echo hi | wc -c)" 3
expect "command substitution in a subshell" "$( (cd /proc && pwd) )" /proc
expect "exit status of a subshell" "$( (exit 3); echo $?)" 3
expect "a here-document" "$(cat <<END
one
two
END
)" "one
two"
echo first > /tmp/redir.$$
echo second >> /tmp/redir.$$
expect "> and >>" "$(cat /tmp/redir.$$)" "first
second"
expect "< and 2>&1" "$(sh -c 'cat; echo oops >&2' < /tmp/redir.$$ 2>&1 | tail -n 1)" oops
expect "2>/dev/null" "$(ls /nonexistent 2>/dev/null; echo $?)" 2
exec 3> /tmp/fd3.$$
echo via-fd3 >&3
exec 3>&-
expect "a descriptor opened by exec" "$(cat /tmp/fd3.$$)" via-fd3
rm -f /tmp/redir.$$ /tmp/fd3.$$
expect "a write to a duplicate after the original is closed" "$(sh -c 'exec 1>&-; echo kept >&2' > /tmp/dup.$$ 2>&1; cat /tmp/dup.$$)" kept
rm -f /tmp/dup.$$

sleep 1 &
sleeper=$!
check "a background job is running" kill -0 "$sleeper"
wait "$sleeper"
expect "wait returns the job's status" $? 0
sh -c 'exit 7' &
wait $!
expect "wait returns a failing job's status" $? 7
sleep 100 &
victim=$!
kill -TERM "$victim"
wait "$victim"
expect "a job killed by SIGTERM" $? 143

total=0
for i in 1 2 3 4 5 6 7 8; do
    (echo $((i * i)) > /tmp/square.$$.$i) &
done
wait
for i in 1 2 3 4 5 6 7 8; do
    total=$((total + $(cat /tmp/square.$$.$i)))
done
rm -f /tmp/square.$$.*
expect "eight children in parallel" "$total" 204

expect "exec replaces the shell" "$(sh -c 'exec echo replaced; echo not-reached')" replaced
expect "a trap on a signal to the shell itself" "$(sh -c 'trap "echo caught" USR1; kill -USR1 $$')" caught
expect "xargs runs a program per batch" "$(seq 1 10 | xargs -n 3 echo | wc -l)" 4
expect "sort, uniq and awk" "$(printf 'b\na\nb\nc\n' | sort | uniq -c | awk '{s += $1} END {print s}')" 4
expect "a script from a file with #!" "$(printf '#!/bin/sh\necho from-script "$@"\n' > /tmp/s.$$; chmod +x /tmp/s.$$; /tmp/s.$$ x; rm -f /tmp/s.$$)" "from-script x"
finish
