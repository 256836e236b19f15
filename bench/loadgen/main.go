// loadgen: a small HTTP load generator (keep-alive, N concurrent workers) for the benchmarks.
//
// Requests come from a JSON spec on stdin so the Python benchmark drives it:
//
//	{"method":"GET","urls":["http://..."],"headers":{"Authorization":"Bearer ..."},
//	 "body":"...{n}...","concurrency":8,"requests":0,"duration_s":5,
//	 "ca":"", "cert":"", "key":""}
//
// "{n}" in URLs or body is replaced by a per-request counter. Prints one JSON object with
// the request count, errors, status histogram, requests/s and latency percentiles (ms).
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type spec struct {
	Method      string            `json:"method"`
	URLs        []string          `json:"urls"`
	Headers     map[string]string `json:"headers"`
	Body        string            `json:"body"`
	Concurrency int               `json:"concurrency"`
	Requests    int64             `json:"requests"`
	DurationS   float64           `json:"duration_s"`
	CA          string            `json:"ca"`
	Cert        string            `json:"cert"`
	Key         string            `json:"key"`
}

type result struct {
	Requests  int64          `json:"requests"`
	Errors    int64          `json:"errors"`
	Statuses  map[string]int `json:"statuses"`
	Seconds   float64        `json:"seconds"`
	RPS       float64        `json:"rps"`
	P50Ms     float64        `json:"p50_ms"`
	P90Ms     float64        `json:"p90_ms"`
	P99Ms     float64        `json:"p99_ms"`
	MaxMs     float64        `json:"max_ms"`
	FirstBody string         `json:"first_error_body,omitempty"`
}

func main() {
	var s spec
	if err := json.NewDecoder(os.Stdin).Decode(&s); err != nil {
		fmt.Fprintln(os.Stderr, "bad spec:", err)
		os.Exit(2)
	}
	if s.Concurrency < 1 {
		s.Concurrency = 1
	}
	tlsConf := &tls.Config{}
	if s.CA != "" {
		pool := x509.NewCertPool()
		pem, err := os.ReadFile(s.CA)
		if err != nil {
			panic(err)
		}
		pool.AppendCertsFromPEM(pem)
		tlsConf.RootCAs = pool
	}
	if s.Cert != "" {
		pair, err := tls.LoadX509KeyPair(s.Cert, s.Key)
		if err != nil {
			panic(err)
		}
		tlsConf.Certificates = []tls.Certificate{pair}
	}
	transport := &http.Transport{TLSClientConfig: tlsConf, MaxIdleConnsPerHost: s.Concurrency * 2, MaxConnsPerHost: s.Concurrency * 2}
	client := &http.Client{Transport: transport, Timeout: 60 * time.Second}

	var counter, done, errors int64
	var mu sync.Mutex
	latencies := make([]float64, 0, 100000)
	statuses := map[string]int{}
	firstBody := ""
	deadline := time.Now().Add(time.Duration(s.DurationS * float64(time.Second)))
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < s.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]float64, 0, 10000)
			localStatus := map[string]int{}
			for {
				n := atomic.AddInt64(&counter, 1)
				if s.Requests > 0 && n > s.Requests {
					break
				}
				if s.Requests == 0 && time.Now().After(deadline) {
					break
				}
				ns := strconv.FormatInt(n, 10)
				url := strings.ReplaceAll(s.URLs[int(n)%len(s.URLs)], "{n}", ns)
				var body io.Reader
				if s.Body != "" {
					body = bytes.NewBufferString(strings.ReplaceAll(s.Body, "{n}", ns))
				}
				req, _ := http.NewRequest(s.Method, url, body)
				for k, v := range s.Headers {
					req.Header.Set(k, v)
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					atomic.AddInt64(&errors, 1)
					continue
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				local = append(local, float64(time.Since(t0).Microseconds())/1000.0)
				localStatus[strconv.Itoa(resp.StatusCode)]++
				if resp.StatusCode >= 400 {
					atomic.AddInt64(&errors, 1)
					mu.Lock()
					if firstBody == "" {
						firstBody = string(data)
					}
					mu.Unlock()
				}
				atomic.AddInt64(&done, 1)
			}
			mu.Lock()
			latencies = append(latencies, local...)
			for k, v := range localStatus {
				statuses[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	sort.Float64s(latencies)
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		i := int(p * float64(len(latencies)-1))
		return latencies[i]
	}
	r := result{Requests: done, Errors: errors, Statuses: statuses, Seconds: elapsed, RPS: float64(done) / elapsed,
		P50Ms: pct(0.50), P90Ms: pct(0.90), P99Ms: pct(0.99), MaxMs: pct(1.0), FirstBody: firstBody}
	json.NewEncoder(os.Stdout).Encode(r)
}
