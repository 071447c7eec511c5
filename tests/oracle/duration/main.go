// Oracle for tests/duration_oracle.rs: parses durations with Go's own time.ParseDuration, which
// upstream Kuma decodes its duration fields with, and prints the verdicts.
//
// Input: one JSON string per line. Output: one JSON object per line:
// {"ok": bool, "nanos": int64, "err": "..."}.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

type response struct {
	Ok    bool   `json:"ok"`
	Nanos int64  `json:"nanos"`
	Err   string `json:"err"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	encoder := json.NewEncoder(out)
	encoder.SetEscapeHTML(false)
	for in.Scan() {
		var text string
		if err := json.Unmarshal(in.Bytes(), &text); err != nil {
			fmt.Fprintln(os.Stderr, "bad input line:", err)
			os.Exit(2)
		}
		var reply response
		if d, err := time.ParseDuration(text); err != nil {
			reply.Err = err.Error()
		} else {
			reply.Ok = true
			reply.Nanos = int64(d)
		}
		if err := encoder.Encode(reply); err != nil {
			fmt.Fprintln(os.Stderr, "write:", err)
			os.Exit(2)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "read:", err)
		os.Exit(2)
	}
}
