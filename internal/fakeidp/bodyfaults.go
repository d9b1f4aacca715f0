package fakeidp

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// writeAnswer writes v, the 200 answer of endpoint ("token" or "userinfo"),
// spoiled by the body fault of f that applies there (see Faults).
func (e *Emulator) writeAnswer(w http.ResponseWriter, r *http.Request, endpoint string, v any, f Faults) {
	if f.BodyFaultsOnly != "" && f.BodyFaultsOnly != endpoint {
		f = Faults{}
	}
	switch {
	case f.Reset:
		resetConn(w)
	case f.Trickle > 0:
		e.writeTrickle(w, r, v, f.Trickle)
	case f.GzipBomb && acceptsGzip(r):
		e.writeGzipBomb(w, v)
	default:
		e.writeJSON(w, http.StatusOK, v, f.HugeBody || f.GzipBomb)
	}
}

// resetConn drops the connection without a response: it is closed with
// SO_LINGER 0, so the client gets a TCP RST.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // cannot hijack: let the server abort the response
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// writeTrickle sends the status and headers at once, then v's JSON one byte
// at a time, each flushed, with a sleep of every between bytes. It returns as
// soon as the client has gone (the request context ends, or a write fails) or
// the emulator closes.
func (e *Emulator) writeTrickle(w http.ResponseWriter, r *http.Request, v any, every time.Duration) {
	body, ok := marshal(w, v)
	if !ok {
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", e.jsonContentType())
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	for i := range body {
		if i > 0 && !e.sleep(r.Context(), every) {
			return
		}
		_, err := w.Write(body[i : i+1])
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return
		}
	}
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, coding := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(coding, ";")
			if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
				continue
			}
			q, ok := strings.CutPrefix(strings.TrimSpace(params), "q=")
			if !ok {
				return true
			}
			weight, err := strconv.ParseFloat(q, 64)
			return err == nil && weight > 0
		}
	}
	return false
}

// GzipBomb's padding member is an array of bombStrings strings of bombRun
// "A"s: 64 MiB and some once inflated. Moderate strings rather than one huge
// string, so that a client can check the body token by token.
const (
	bombRun     = 64 << 10
	bombStrings = 1024
)

// gzipHeader starts a gzip member: deflate, no flags, no mtime, maximum
// compression, unknown OS.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 0xff}

// deflatedPart is the start of a DEFLATE stream and what a gzip trailer
// needs to know about its uncompressed bytes.
type deflatedPart struct {
	blocks []byte // byte-aligned, none final
	crc    uint32 // CRC-32 (IEEE) of the uncompressed bytes
	size   int64  // uncompressed length
}

// bombHead is the start of every GzipBomb body, `{"x_padding":[""` and the
// padding strings, compressed once per process: compressing 64 MiB per
// answer would take a second of CPU, several under the race detector. Each
// piece is compressed on its own (see deflate), so one compressed string can
// stand for all of them.
var bombHead = sync.OnceValue(func() deflatedPart {
	open := []byte(`{"x_padding":[""`)
	str := append(append([]byte(`,"`), bytes.Repeat([]byte("A"), bombRun)...), '"')
	head := deflatedPart{blocks: deflate(open, false), crc: crc32.ChecksumIEEE(open), size: int64(len(open))}
	z := deflate(str, false)
	for range bombStrings {
		head.blocks = append(head.blocks, z...)
		head.crc = crc32.Update(head.crc, crc32.IEEETable, str)
		head.size += int64(len(str))
	}
	return head
})

// deflate compresses p with a fresh compressor: its blocks refer to nothing
// before p. Unless final, the blocks end with a sync flush (byte-aligned, no
// final block), so another piece's blocks can follow them in one stream.
func deflate(p []byte, final bool) []byte {
	var b bytes.Buffer
	zw, _ := flate.NewWriter(&b, flate.BestCompression) // a valid level: no error
	_, _ = zw.Write(p)                                  // a bytes.Buffer does not fail
	if final {
		_ = zw.Close()
	} else {
		_ = zw.Flush()
	}
	return b.Bytes()
}

// writeGzipBomb answers 200 with one gzip member: bombHead, then v's members
// and the closing brackets, then the CRC-32 and length of the whole.
func (e *Emulator) writeGzipBomb(w http.ResponseWriter, v any) {
	obj, ok := marshal(w, v)
	if !ok {
		return
	}
	head := bombHead()
	tail := append([]byte("]"), afterPadding(obj)...)
	blocks := deflate(tail, true)
	trailer := binary.LittleEndian.AppendUint32(nil, crc32.Update(head.crc, crc32.IEEETable, tail))
	trailer = binary.LittleEndian.AppendUint32(trailer, uint32(head.size+int64(len(tail)))) // ISIZE is modulo 2^32
	w.Header().Set("Content-Type", e.jsonContentType())
	w.Header().Set("Content-Encoding", "gzip")
	w.Header().Set("Vary", "Accept-Encoding")
	w.Header().Set("Content-Length", strconv.Itoa(len(gzipHeader)+len(head.blocks)+len(blocks)+len(trailer)))
	w.WriteHeader(http.StatusOK)
	for _, b := range [][]byte{gzipHeader, head.blocks, blocks, trailer} {
		if _, err := w.Write(b); err != nil {
			return
		}
	}
}
