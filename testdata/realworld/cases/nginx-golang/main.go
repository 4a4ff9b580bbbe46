// A stand-in for awesome-compose's nginx-golang backend: one handler on :80.
package main

import (
	"fmt"
	"log"
	"net/http"
	"runtime"
)

func handler(w http.ResponseWriter, r *http.Request) {
	log.Printf("%s %s", r.Method, r.URL)
	fmt.Fprintf(w, "Hello from Docker! (%s, %s)\n", runtime.Version(), r.URL.Path)
}

func main() {
	http.HandleFunc("/", handler)
	log.Fatal(http.ListenAndServe(":80", nil))
}
