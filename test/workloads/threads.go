// Goroutines on several OS threads, channels, a mutex, a timer, a child process: the Go runtime's
// clone(2) flags, futexes, signals (preemption) and os/exec must all work under the seccomp profile.
package main

import (
	"fmt"
	"os/exec"
	"runtime"
	"sync"
	"time"
)

func main() {
	runtime.GOMAXPROCS(4)
	var wg sync.WaitGroup
	var mu sync.Mutex
	sum := 0
	results := make(chan int, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			x := 0
			for j := 0; j < 200000; j++ {
				x += j % (n + 1)
			}
			mu.Lock()
			sum += n
			mu.Unlock()
			results <- x
		}(i)
	}
	wg.Wait()
	close(results)
	count := 0
	for range results {
		count++
	}
	<-time.After(10 * time.Millisecond)
	out, err := exec.Command("echo", "child").Output()
	if err != nil {
		panic(err)
	}
	fmt.Printf("goroutines %d sum %d %s", count, sum, out)
	fmt.Println("ok go")
}
