// Oracle for tests/gotemplate_oracle.rs: parses (and optionally executes) templates with Go's
// own text/template, the way upstream Kuma does, and prints the verdicts.
//
// Input: one JSON object per line: {"src": "...", "exec": bool, "fields": [["Mesh","m"],...],
// "labels": {...}}. Output: one JSON object per line: {"ok": bool, "out": "...", "err": "..."}.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"text/template"
)

type request struct {
	Src    string            `json:"src"`
	Exec   bool              `json:"exec"`
	Fields [][2]string       `json:"fields"`
	Labels map[string]string `json:"labels"`
}

type response struct {
	Ok  bool   `json:"ok"`
	Out string `json:"out"`
	Err string `json:"err"`
}

// data builds the anonymous struct Kuma executes against, so %T and errors name it the same.
func data(fields [][2]string) any {
	structFields := make([]reflect.StructField, len(fields))
	for i, f := range fields {
		structFields[i] = reflect.StructField{Name: f[0], Type: reflect.TypeOf("")}
	}
	value := reflect.New(reflect.StructOf(structFields)).Elem()
	for i, f := range fields {
		value.Field(i).SetString(f[1])
	}
	return value.Interface()
}

func decide(req request) (resp response) {
	defer func() {
		if r := recover(); r != nil {
			resp = response{Err: fmt.Sprintf("panic: %v", r)}
		}
	}()
	labels := req.Labels
	funcs := template.FuncMap{
		"label": func(key string) (string, error) {
			value, ok := labels[key]
			if !ok {
				return "", fmt.Errorf("label %s not found", key)
			}
			return value, nil
		},
	}
	tmpl, err := template.New("").Funcs(funcs).Parse(req.Src)
	if err != nil {
		return response{Err: err.Error()}
	}
	if !req.Exec {
		return response{Ok: true}
	}
	var out strings.Builder
	if err := tmpl.Execute(&out, data(req.Fields)); err != nil {
		return response{Err: err.Error()}
	}
	return response{Ok: true, Out: out.String()}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	encoder := json.NewEncoder(out)
	for in.Scan() {
		var req request
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			fmt.Fprintln(os.Stderr, "bad request:", err)
			os.Exit(2)
		}
		if err := encoder.Encode(decide(req)); err != nil {
			os.Exit(2)
		}
	}
}
