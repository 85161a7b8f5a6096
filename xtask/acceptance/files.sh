# /tmp and the file tools: dd, checksums, links, directories, find, du, large files.
. /acceptance/lib

dir=/tmp/acceptance-files.$$
mkdir -p "$dir/a/b/c"
cd "$dir" || exit 1
check "dd 64 MiB of zeros into /tmp" dd if=/dev/zero of=big bs=1M count=64
expect "the file's size" "$(stat -c %s big)" 67108864
expect "its checksum" "$(md5sum < big | cut -d' ' -f1)" 7f614da9329cd3aebf59b91aadc30bf0
check "cmp against /dev/zero" cmp -n 67108864 big /dev/zero
check "dd from a file in pieces" sh -c 'dd if=big of=part bs=4096 skip=100 count=10 2>/dev/null && [ "$(stat -c %s part)" = 40960 ]'
rm -f big part
head -c 100000 /dev/urandom > random
cp random copy
check "cp keeps the contents" cmp random copy
mv copy a/b/c/moved
check "mv into a subdirectory" cmp random a/b/c/moved
ln random hard
ln -s random soft
expect "a hard link's count" "$(stat -c %h random)" 2
expect "a symbolic link" "$(readlink soft)" random
check "through the symbolic link" cmp soft random
expect "find" "$(find . -name moved)" ./a/b/c/moved
check "du" sh -c 'du -s . | grep -q "^[0-9]"'
check "tar round trip" sh -c 'tar cf /tmp/t.$$.tar a random && mkdir x && tar xf /tmp/t.$$.tar -C x && cmp x/random random; s=$?; rm -f /tmp/t.$$.tar; exit $s'
check "sed -i" sh -c 'printf "one\ntwo\n" > f && sed -i s/two/three/ f && [ "$(tail -n 1 f)" = three ]'
check "sort of 20000 lines" sh -c 'seq 20000 | sort -rn | head -n 1 | grep -qx 20000'
check "truncate" sh -c 'truncate -s 1M sparse && [ "$(stat -c %s sparse)" = 1048576 ]'
check "touch and ls -l" sh -c 'touch new && ls -l new | grep -q "^-rw"'
check "chmod" sh -c 'chmod 600 new && [ "$(stat -c %a new)" = 600 ]'
cd / && rm -rf "$dir"
check "rm -rf removed the tree" test ! -e "$dir"
check "df /tmp" sh -c 'df /tmp | tail -n 1 | grep -q "%"'
finish
