# Threads, a Queue, fork, a subprocess.
q = Queue.new
threads = 8.times.map { |i| Thread.new { q << i } }
threads.each(&:join)
total = 0
total += q.pop until q.empty?
pid = fork { exit!(0) }
Process.wait(pid)
child = `echo child`.strip
puts "threads #{total} fork #{$?.exitstatus} #{child}"
puts "ok ruby"
