// The Go baselines of weft-bench's async suite: goroutines against weft's
// tasks. Each mode does its work N times, timed inside the program so that
// process start-up is not counted, and prints the figure first on its line
// (seconds, or bytes for rss), then a check value.
//
//	go-async spawn_join N       wg.Add(1); go func() { wg.Done() }(); wg.Wait(), N times,
//	                            with GOMAXPROCS=1: one thread, as one weft loop
//	go-async spawn_concurrent N N goroutines that each yield once (runtime.Gosched)
//	                            while all are live, then a WaitGroup wait for all;
//	                            GOMAXPROCS=1 likewise
//	go-async rss N              bytes of RSS per goroutine, with N goroutines
//	                            blocked on a channel (from /proc/self/statm)
//	go-async pingpong N         N round trips of one value between two goroutines
//	                            through two unbuffered channels, GOMAXPROCS at
//	                            Go's default (one per CPU)
//	go-async mutex N            1,000 goroutines on 2 threads (GOMAXPROCS=2) each
//	                            take one sync.Mutex N/1,000 times to add one to
//	                            a counter
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

func spawnJoin(n int) float64 {
	runtime.GOMAXPROCS(1)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { wg.Done() }()
		wg.Wait()
	}
	return time.Since(start).Seconds()
}

func spawnConcurrent(n int) float64 {
	runtime.GOMAXPROCS(1)
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			runtime.Gosched()
			wg.Done()
		}()
	}
	wg.Wait()
	return time.Since(start).Seconds()
}

// Resident bytes of the process: statm's second field is in pages.
func resident() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		panic(err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		panic(err)
	}
	return pages * int64(os.Getpagesize())
}

func rss(n int) float64 {
	block := make(chan struct{})
	var started, ended sync.WaitGroup
	runtime.GC()
	before := resident()
	started.Add(n)
	ended.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-block
			ended.Done()
		}()
	}
	started.Wait()
	// Every goroutine has run up to its receive; let the last ones park.
	for i := 0; i < 100; i++ {
		runtime.Gosched()
	}
	after := resident()
	close(block)
	ended.Wait()
	return float64(after-before) / float64(n)
}

func pingpong(n int) float64 {
	there, back := make(chan int), make(chan int)
	start := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			back <- <-there
		}
	}()
	sum := 0
	for i := 0; i < n; i++ {
		there <- i
		sum += <-back
	}
	return time.Since(start).Seconds()
}

func mutex(n int) float64 {
	runtime.GOMAXPROCS(2)
	const goroutines = 1000
	var mu sync.Mutex
	var wg sync.WaitGroup
	counter, each := 0, n/goroutines
	if each < 1 {
		each = 1
	}
	start := time.Now()
	wg.Add(goroutines)
	for g := 0; g < goroutines; g++ {
		go func() {
			for i := 0; i < each; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	if counter != each*goroutines {
		panic("lost an update")
	}
	return time.Since(start).Seconds() * float64(n) / float64(each*goroutines)
}

func main() {
	modes := map[string]func(int) float64{
		"spawn_join":       spawnJoin,
		"spawn_concurrent": spawnConcurrent,
		"rss":              rss,
		"pingpong":         pingpong,
		"mutex":            mutex,
	}
	if len(os.Args) != 3 || modes[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: go-async spawn_join|spawn_concurrent|rss|pingpong|mutex N")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil || n < 1 {
		fmt.Fprintln(os.Stderr, "go-async: N must be a positive integer")
		os.Exit(2)
	}
	fmt.Println(modes[os.Args[1]](n), n)
}
