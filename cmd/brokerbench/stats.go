package main

import (
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// latency summarises a set of durations, in milliseconds.
type latency struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summarize sorts ds in place.
func summarize(ds []time.Duration) latency {
	if len(ds) == 0 {
		return latency{}
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(ds)))) - 1
		i = max(0, min(i, len(ds)-1))
		return ms(ds[i])
	}
	return latency{
		N: len(ds), Mean: ms(sum / time.Duration(len(ds))),
		P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: ms(ds[len(ds)-1]),
	}
}

// errorCounts counts failures by kind: an HTTP status ("401") or a
// client-side failure ("transport", "no_cookie", …).
type errorCounts map[string]int

func (e errorCounts) add(o errorCounts) {
	for k, v := range o {
		e[k] += v
	}
}

func (e errorCounts) total() int {
	n := 0
	for _, v := range e {
		n += v
	}
	return n
}

func (e errorCounts) String() string {
	if len(e) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k + ": " + strconv.Itoa(e[k]))
	}
	return b.String()
}
