<?php
// proc_open and exec (PHP has no threads in the CLI build).
$p = proc_open(['echo', 'child'], [1 => ['pipe', 'w']], $pipes);
$child = trim(stream_get_contents($pipes[1]));
fclose($pipes[1]);
proc_close($p);
exec('echo exec', $out);
echo "proc_open $child {$out[0]}\n";
echo "ok php\n";
