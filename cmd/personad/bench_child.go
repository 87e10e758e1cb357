package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/personad/personad/server"
)

// benchServer is a daemon the bench started for the run: in this process
// (-serve) or as a child process (-serve-bin, -compare-bin).
type benchServer interface {
	// memory reads the daemon's resident memory now and at its peak, and
	// says whose memory it is.
	memory() (rss, peak int64, source string, err error)
	// cpu returns the CPU time the daemon has used; ok is false when it
	// shares this process, whose CPU the load reports already.
	cpu() (used time.Duration, ok bool)
	// changesHead returns the change feed's head.
	changesHead(ctx context.Context) (int64, error)
	// stop shuts the daemon down; close also removes its directory
	// unless kept, and returns the directory when kept.
	stop()
	close() (kept string)
}

// childDaemon is a personad binary run as a child process: "BIN serve" on
// 127.0.0.1 ports picked here, on a temp database, with the webhook secret
// and API token in its environment (never on its command line, where ps
// would show them). Only flags the code before issue 15 has are passed,
// so that -compare-bin can run a binary built from it.
type childDaemon struct {
	bin string
	cmd *exec.Cmd
	benchDir
	exited  chan struct{}
	stopped bool
	api     *apiClient
}

// childStartTimeout bounds the wait for a child daemon to answer /healthz.
const childStartTimeout = 30 * time.Second

// startChild starts bin serve with a random secret and token and waits
// until its query API answers.
func (b *benchCommand) startChild(ctx context.Context, bin string, client *http.Client) (*childDaemon, error) {
	bd, err := newBenchDir(b.keep)
	if err != nil {
		return nil, err
	}
	d := &childDaemon{bin: bin, benchDir: bd, exited: make(chan struct{}), stopped: true}
	b.secret = []byte("wbhsec_bench_" + randomHex(16))
	b.token = randomHex(16)
	notifyArgs, notifySecret, err := b.notify.daemonArgs()
	if err != nil {
		d.close()
		return nil, err
	}
	ports, err := freeLoopbackPorts(2)
	if err != nil {
		d.close()
		return nil, err
	}
	webhook, api := net.JoinHostPort("127.0.0.1", ports[0]), net.JoinHostPort("127.0.0.1", ports[1])
	args := append([]string{"serve", "-db", filepath.Join(d.dir, "personad.db"), "-listen", webhook, "-api-listen", api,
		"-synchronous", b.synchronous}, notifyArgs...)
	if b.autoDecide {
		args = append(args, "-auto-decide")
	}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Env = childEnv(os.Environ(), map[string]string{envSecrets: string(b.secret), envAPIToken: b.token, envNotifySecret: notifySecret})
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		d.close()
		return nil, fmt.Errorf("starting %s serve: %w", bin, err)
	}
	d.stopped = false
	go func() {
		d.cmd.Wait()
		close(d.exited)
	}()
	b.url = "http://" + webhook + server.WebhookPath
	b.api = "http://" + api
	d.api = &apiClient{client: client, base: b.api, token: b.token}
	if err := d.waitReady(ctx); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// waitReady polls /healthz until it answers (whatever it says: the load
// shows how the daemon does) or the child exits.
func (d *childDaemon) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(childStartTimeout)
	for {
		attempt, cancel := context.WithTimeout(ctx, time.Second)
		_, _, err := d.api.get(attempt, "/healthz")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-d.exited:
			return withHint(fmt.Errorf("%s serve exited: %s", d.bin, d.cmd.ProcessState), "its log: "+lastLines(d.log.Name(), 5))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return withHint(fmt.Errorf("%s serve did not answer on %s/healthz within %v", d.bin, d.api.base, childStartTimeout),
				"its log: "+lastLines(d.log.Name(), 5))
		}
	}
}

func (d *childDaemon) pid() int { return d.cmd.Process.Pid }

func (d *childDaemon) memory() (rss, peak int64, source string, err error) {
	rss, peak, err = procMemory(strconv.Itoa(d.pid()))
	return rss, peak, fmt.Sprintf("daemon process %d, from /proc", d.pid()), err
}

func (d *childDaemon) cpu() (time.Duration, bool) {
	v, err := procCPU(strconv.Itoa(d.pid()))
	return v, err == nil
}

func (d *childDaemon) changesHead(ctx context.Context) (int64, error) { return d.api.feedHead(ctx) }

// stop sends SIGTERM and waits for the daemon to finish what it holds;
// it kills it after 30 seconds, or at once where SIGTERM cannot be sent.
func (d *childDaemon) stop() {
	if d.stopped {
		return
	}
	d.stopped = true
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.cmd.Process.Kill()
	}
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
}

func (d *childDaemon) close() (kept string) {
	d.stop()
	return d.release()
}

// childEnv is this process's environment without personad's and
// Persona's variables (a Persona API key would start reconciliation),
// plus set, without its empty values.
func childEnv(environ []string, set map[string]string) []string {
	var env []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "PERSONAD_") && !strings.HasPrefix(kv, "PERSONA_") {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// freeLoopbackPorts returns n ports free on 127.0.0.1 a moment ago.
func freeLoopbackPorts(n int) ([]string, error) {
	var ports []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close() // held until all are picked, so they differ
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		ports = append(ports, port)
	}
	return ports, nil
}

// procMemory reads VmRSS and VmHWM (the peak) from /proc/PID/status
// (Linux); pid may be "self".
func procMemory(pid string) (rss, peak int64, err error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, 0, err
	}
	kb := func(v string) int64 {
		n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		return n << 10
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rss = kb(v)
		} else if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			peak = kb(v)
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("no VmRSS in /proc/%s/status", pid)
	}
	return rss, peak, nil
}

// userHZ is the unit of /proc/PID/stat's times: 100 per second on every
// Linux architecture Go supports.
const userHZ = 100

// procCPU reads a process's user and system time from /proc/PID/stat.
func procCPU(pid string) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its last ')'. utime and stime are fields 14 and 15, so 12 and 13 after.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, errors.New("unexpected /proc/" + pid + "/stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}

// lastLines returns the last n lines of a file, joined by " | ".
func lastLines(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > 4096 {
		f.Seek(-4096, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], " | ")
}
