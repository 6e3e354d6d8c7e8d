package proxy

import "net/http"

// upstreamWriteBuffer is the write buffer of each upstream connection. It
// carries a request's headers (well under 1 KB) before the body is copied
// straight to the socket; the 4 KB default would be held, touched, by every
// open stream.
const upstreamWriteBuffer = 1 << 10

// TuneTransport sets up t, the transport under the proxy's upstream client,
// for a server's traffic: it keeps an idle connection for every request the
// proxy may forward at once (Options.MaxInFlight; the default keeps 2 per
// host, so a burst of parallel requests would dial, and shake hands, anew
// each time) and gives each connection a small write buffer. The read
// buffer keeps its 4 KB: it bounds how many events one read from upstream
// can bring, and so how many writes a busy stream needs.
func TuneTransport(t *http.Transport, maxInFlight int) {
	if maxInFlight <= 0 {
		maxInFlight = DefaultMaxInFlight
	}
	t.MaxIdleConnsPerHost = maxInFlight
	if t.MaxIdleConns != 0 { // 0: no bound already
		t.MaxIdleConns = max(t.MaxIdleConns, maxInFlight)
	}
	t.WriteBufferSize = upstreamWriteBuffer
}
