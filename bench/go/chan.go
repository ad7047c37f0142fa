// The Go baseline of weft-bench's queue suite: n integers through a
// buffered channel of capacity 1024 from one goroutine to another, the way
// Go programs hand work between goroutines. GOMAXPROCS is Go's default (one
// per CPU). Prints the seconds the transfer took, timed inside the program
// so that process start-up is not counted, and a checksum.
//
//	go-chan N
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n < 1 {
		fmt.Fprintln(os.Stderr, "usage: go-chan N")
		os.Exit(2)
	}
	ch := make(chan int, 1024)
	start := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			ch <- i
		}
	}()
	sum := 0
	for i := 0; i < n; i++ {
		sum += <-ch
	}
	fmt.Println(time.Since(start).Seconds(), sum)
}
