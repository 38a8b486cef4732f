package redistest

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a TCP proxy on a loopback port that forwards to a Redis server
// and can make it slow (a delay on every chunk relayed) or silent
// (accepted, never answered).
type Proxy struct {
	Addr   string
	delay  atomic.Int64
	reply  atomic.Int64 // a delay on the server's replies only
	silent atomic.Bool
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

// StartProxy forwards a loopback port to target until t ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: proxy: %v", err)
	}
	p := &Proxy{Addr: ln.Addr().String(), ln: ln}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.track(c)
			p.wg.Go(func() { p.serve(c, target) })
		}
	})
	t.Cleanup(p.close)
	return p
}

// SetDelay delays every chunk relayed in either direction by d.
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// SetReplyDelay delays every chunk the server sends by d: requests arrive
// and run at once, their replies come late.
func (p *Proxy) SetReplyDelay(d time.Duration) { p.reply.Store(int64(d)) }

// SetSilent makes the proxy swallow everything: the server never answers.
func (p *Proxy) SetSilent(on bool) { p.silent.Store(on) }

func (p *Proxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

func (p *Proxy) serve(client net.Conn, target string) {
	server, err := net.Dial("tcp", target)
	if err != nil {
		client.Close()
		return
	}
	p.track(server)
	relay := func(dst, src net.Conn, extra *atomic.Int64) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 && !p.silent.Load() {
				time.Sleep(time.Duration(p.delay.Load() + extra.Load()))
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		dst.Close()
		src.Close()
	}
	var none atomic.Int64
	p.wg.Go(func() { relay(server, client, &none) })
	relay(client, server, &p.reply)
}

func (p *Proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
