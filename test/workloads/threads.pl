# fork, pipes, a subprocess (Debian's perl also has ithreads; fork is what Perl programs use).
use strict;
use warnings;
pipe(my $r, my $w) or die;
my $pid = fork() // die;
if ($pid == 0) { close $r; print $w "from child\n"; exit 0; }
close $w;
my $line = <$r>;
waitpid($pid, 0);
chomp(my $child = `echo child`);
chomp $line;
print "fork $line $child\n";
print "ok perl\n";
