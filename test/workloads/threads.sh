# Background jobs, pipes, subshells, process substitution.
(sleep 0.05; echo sub) > /tmp/sub.txt &
wait
count=$(seq 1 1000 | sort -n | tail -n 1)
read -r line < <(echo substituted)
echo "jobs $(cat /tmp/sub.txt) pipe $count $line"
echo "ok bash"
