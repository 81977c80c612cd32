//go:build unix

package main

import (
	"bufio"
	"context"
	"errors"
	"go/parser"
	"go/token"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The README's commands are checked as written: every fenced block is
// read from ../../README.md at run time, so a README edit is tested by the
// next run rather than by a copy kept here.

// readmeBlock is one fenced code block of the README.
type readmeBlock struct {
	lang string // the info string after ```
	body string // the lines between the fences, each ending in \n
	line int    // 1-based line of the opening fence
}

// repoRoot is the module root, two directories above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// readmeBlocks returns README.md's fenced code blocks in order.
func readmeBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		blocks []readmeBlock
		cur    *readmeBlock
		body   strings.Builder
	)
	for i, line := range strings.Split(string(b), "\n") {
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &readmeBlock{lang: strings.TrimSpace(strings.TrimPrefix(line, "```")), line: i + 1}
			body.Reset()
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.body = body.String()
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(line + "\n")
		}
	}
	if cur != nil {
		t.Fatalf("README.md:%d: a ``` fence is never closed", cur.line)
	}
	return blocks
}

// readmeFind returns the one block of language lang whose body starts
// with prefix, failing the test when there is none or more than one.
func readmeFind(t *testing.T, blocks []readmeBlock, lang, prefix string) readmeBlock {
	t.Helper()
	var found []readmeBlock
	for _, b := range blocks {
		if b.lang == lang && strings.HasPrefix(b.body, prefix) {
			found = append(found, b)
		}
	}
	if len(found) != 1 {
		t.Fatalf("README.md has %d ```%s blocks starting with %q, want 1", len(found), lang, prefix)
	}
	return found[0]
}

// TestREADME checks every ```sh and ```go block of the README: each one is
// run, built or (for the lines that need the network) checked against the
// module it names. Blocks of a shape this test does not know fail it, so
// that a new README command gets a check.
func TestREADME(t *testing.T) {
	blocks := readmeBlocks(t)
	known := map[string]bool{}
	mark := func(b readmeBlock) readmeBlock { known[b.lang+b.body] = true; return b }
	tryIt := mark(readmeFind(t, blocks, "sh", "go run ./cmd/hubwire demo\n"))
	runTests := mark(readmeFind(t, blocks, "sh", "./scripts/test\n"))
	install := mark(readmeFind(t, blocks, "sh", "go get "))
	emulatorBlock := mark(readmeFind(t, blocks, "sh", "hubwire emulator\n"))
	flow := mark(readmeFind(t, blocks, "sh", "export IOTHUB_DEVICE_CONNECTION_STRING=$(hubwire device add dev1)\n"))
	program := mark(readmeFind(t, blocks, "go", "package main\n"))
	snippet := mark(readmeFind(t, blocks, "go", "hub := emulatortest.New(t)"))
	for _, b := range blocks {
		if !known[b.lang+b.body] && (b.lang == "sh" || b.lang == "go" || b.lang == "bash") {
			t.Errorf("README.md:%d: a ```%s block this test does not check:\n%s", b.line, b.lang, b.body)
		}
	}
	root := repoRoot(t)

	t.Run("try-it", func(t *testing.T) {
		if testing.Short() {
			t.Skip("runs go run; skipped with -short")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "-e", "-c", tryIt.body)
		cmd.Dir = root
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("README.md:%d %q: %v\nstdout:\n%s\nstderr:\n%s", tryIt.line, tryIt.body, err, out, stderr.String())
		}
		checkDemoTranscript(t, string(out))
	})

	t.Run("run-tests", func(t *testing.T) {
		// ./scripts/test runs this very test, so it is not run from here:
		// CI runs it (.ci/run), and this checks that CI runs exactly it.
		if strings.TrimSpace(runTests.body) != "./scripts/test" {
			t.Fatalf("README.md:%d: %q", runTests.line, runTests.body)
		}
		fi, err := os.Stat(filepath.Join(root, "scripts", "test"))
		if err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("scripts/test is not an executable file (%v)", err)
		}
		ci, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?m)^exec \./scripts/test$`).Match(ci) {
			t.Errorf(".ci/run does not exec ./scripts/test:\n%s", ci)
		}
	})

	t.Run("install", func(t *testing.T) {
		// go get and go install @latest need the network; check that they
		// name this module and packages of it that exist.
		modPath := moduleName(t, root)
		lines := strings.Split(strings.TrimSpace(install.body), "\n")
		if len(lines) != 2 {
			t.Fatalf("README.md:%d: want a go get and a go install line:\n%s", install.line, install.body)
		}
		for i, want := range []string{"get", "install"} {
			f := strings.Fields(strings.SplitN(lines[i], "#", 2)[0])
			if len(f) != 3 || f[0] != "go" || f[1] != want {
				t.Errorf("README.md:%d: %q, want go %s PATH@latest", install.line+1+i, lines[i], want)
				continue
			}
			path, version, ok := strings.Cut(f[2], "@")
			if !ok || version != "latest" {
				t.Errorf("%q: want @latest", lines[i])
			}
			if path != modPath && !strings.HasPrefix(path, modPath+"/") {
				t.Errorf("%q names %s, not a path of module %s", lines[i], path, modPath)
				continue
			}
			dir := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(strings.TrimPrefix(path, modPath), "/")))
			switch want {
			case "get":
				if path != modPath {
					t.Errorf("%q: go get of %s, want the module %s", lines[i], path, modPath)
				}
			case "install":
				if name := goPackageName(t, dir); name != "main" {
					t.Errorf("%q: %s is package %q, want a command (package main)", lines[i], path, name)
				}
			}
		}
	})

	t.Run("default-ports", func(t *testing.T) {
		readmeDefaultPorts(t, root, emulatorBlock, flow, program, snippet)
	})
}

// moduleName is the module path in root/go.mod.
func moduleName(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^module\s+(\S+)\s*$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod has no module line")
	}
	return string(m[1])
}

// goPackageName is the package clause of the non-test Go files in dir.
func goPackageName(t *testing.T, dir string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	name := ""
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.PackageClauseOnly)
		if err != nil {
			t.Fatal(err)
		}
		if name != "" && name != af.Name.Name {
			t.Fatalf("%s: packages %s and %s", dir, name, af.Name.Name)
		}
		name = af.Name.Name
	}
	if name == "" {
		t.Errorf("%s: no Go package there", dir)
	}
	return name
}

// readmeDefaultPorts runs the README's emulator block on 8883 and 443 as
// written, its second-shell flow through bash with the printed export
// lines applied, the first program against it and the test snippet.
func readmeDefaultPorts(t *testing.T, root string, emulatorBlock, flow, program, snippet readmeBlock) {
	bin := buildBinary(t)
	lockFixedPorts(t)
	for _, addr := range []string{"127.0.0.1:8883", "127.0.0.1:443"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("cannot bind %s in CI: %v", addr, err)
			}
			t.Skipf("cannot bind %s here (%v): needs root or CAP_NET_BIND_SERVICE", addr, err)
		}
		ln.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A fresh machine: an empty home, hubwire on PATH.
	home := t.TempDir()
	env := []string{"HOME=" + home, "PATH=" + filepath.Dir(bin) + string(os.PathListSeparator) + os.Getenv("PATH")}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "HOME" || k == "PATH" || k == "XDG_CONFIG_HOME" || k == "SSL_CERT_FILE" || k == "SSL_CERT_DIR":
		case strings.HasPrefix(k, "IOTHUB_") || strings.HasPrefix(k, "HUBWIRE_"):
		default:
			env = append(env, kv)
		}
	}

	emu := exec.Command("bash", "-c", emulatorBlock.body)
	emu.Env = env
	emu.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var emuErr syncBuffer
	emu.Stderr = &emuErr
	stdout, err := emu.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	emuDone := make(chan error, 1)
	go func() { emuDone <- emu.Wait() }()
	defer func() {
		// Ctrl-C, as the README's user would; by process group, bounded.
		syscall.Kill(-emu.Process.Pid, syscall.SIGINT)
		select {
		case err := <-emuDone:
			if err != nil {
				t.Errorf("hubwire emulator after Ctrl-C: %v\n%s", err, emuErr.String())
			}
		case <-time.After(15 * time.Second):
			syscall.Kill(-emu.Process.Pid, syscall.SIGKILL)
			t.Errorf("hubwire emulator did not stop within 15 s of Ctrl-C")
			<-emuDone
		}
	}()
	type bannerResult struct {
		text string
		err  error
	}
	bannerc := make(chan bannerResult, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var b strings.Builder
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "Ready.") {
				bannerc <- bannerResult{text: b.String()}
				return
			}
		}
		bannerc <- bannerResult{text: b.String(), err: errors.Join(errors.New("no Ready. line"), sc.Err())}
	}()
	var banner string
	select {
	case r := <-bannerc:
		if r.err != nil {
			t.Fatalf("%q: %v\nstdout:\n%s\nstderr:\n%s", emulatorBlock.body, r.err, r.text, emuErr.String())
		}
		banner = r.text
	case <-time.After(30 * time.Second):
		t.Fatalf("%q printed no Ready. line within 30 s:\n%s", emulatorBlock.body, emuErr.String())
	}
	go func() { // the banner is done; keep the pipe drained
		buf := make([]byte, 4096)
		for {
			if _, err := stdout.Read(buf); err != nil {
				return
			}
		}
	}()

	// "paste the export lines it printed"
	shellEnv := append([]string(nil), env...)
	caFile := ""
	for _, line := range strings.Split(banner, "\n") {
		rest, ok := strings.CutPrefix(line, "  export ")
		if !ok {
			continue
		}
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			t.Fatalf("export line %q", line)
		}
		v = strings.Trim(v, "'")
		shellEnv = append(shellEnv, k+"="+v)
		if k == envCAFile {
			caFile = v
		}
	}
	if !strings.Contains(banner, "  export "+envServiceConnStr+"=") {
		t.Fatalf("the banner has no export of %s:\n%s", envServiceConnStr, banner)
	}
	// The README names the default CA path for Node.
	if want := filepath.Join(home, ".config", "hubwire", "emulator", "certs", "ca.pem"); caFile != want {
		t.Errorf("CA file %q, the README says ~/.config/hubwire/emulator/certs/ca.pem (%s)", caFile, want)
	}
	for _, unwanted := range []string{envServiceEndpoint, envMQTTAddress, envWSSAddress, "official SDKs dial those"} {
		if strings.Contains(banner, unwanted) {
			t.Errorf("on the default ports the banner mentions %s:\n%s", unwanted, banner)
		}
	}
	for _, want := range []string{"127.0.0.1:8883", "127.0.0.1:443"} {
		if !strings.Contains(banner, want) {
			t.Errorf("the banner does not name %s:\n%s", want, banner)
		}
	}

	hubwire := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = shellEnv
		var stderr strings.Builder
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("hubwire %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return string(b)
	}

	t.Run("second-shell", func(t *testing.T) {
		readmeFlow(t, ctx, flow, shellEnv)
		// Beyond the README: the state the flow left.
		list := hubwire("device", "list")
		if !regexp.MustCompile(`(?m)^dev1 +enabled +`).MatchString(list) || !strings.Contains(list, "2 devices") {
			t.Errorf("device list printed:\n%s", list)
		}
		hubwire("send", "--connection-string", strings.TrimSpace(hubwire("device", "show", "--print-connection-string", "sensor")), "--transport", "mqtt-ws", `{"temperature":22}`)
		if out := hubwire("monitor", "--from", "earliest", "--no-follow", "--device", "sensor"); strings.Count(out, "\n") != 2 {
			t.Errorf("monitor --no-follow printed:\n%s", out)
		}
	})

	t.Run("first-program", func(t *testing.T) {
		if caFile == "" {
			t.Fatalf("the banner exports no %s:\n%s", envCAFile, banner)
		}
		dir := readmeModule(t, root, "main.go", program.body)
		cs := strings.TrimSpace(hubwire("device", "add", "first"))
		// "SSL_CERT_FILE=<the CA path the emulator printed> go run ."
		cmd := exec.CommandContext(ctx, "go", "run", ".")
		cmd.Dir = dir
		cmd.Env = append(readmeGoEnv(t, env), envDeviceConnStr+"="+cs, "SSL_CERT_FILE="+caFile)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("README.md:%d: go run . of the first program: %v\n%s", program.line, err, out)
		}
		out := hubwire("monitor", "--from", "earliest", "--no-follow", "--device", "first")
		if !strings.Contains(out, `first  {"temperature":21.5}`) || strings.Count(out, "\n") != 1 {
			t.Errorf("the hub's telemetry from the first program:\n%s", out)
		}
	})

	t.Run("test-snippet", func(t *testing.T) {
		// The snippet is the body of a Go test: run it as one, using what
		// it declares.
		src := "package main\n\nimport (\n\t\"testing\"\n\n\t\"github.com/hubwire/hubwire/iothub/emulator/emulatortest\"\n)\n\n" +
			"func TestSnippet(t *testing.T) {\n" + snippet.body +
			"\tif hub == nil || !strings.Contains(cs, \"DeviceId=dev1;\") {\n\t\tt.Fatalf(\"hub %v, connection string %q\", hub, cs)\n\t}\n}\n"
		src = strings.Replace(src, "import (\n", "import (\n\t\"strings\"\n", 1)
		dir := readmeModule(t, root, "snippet_test.go", src)
		cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-run", "^TestSnippet$", "-v", ".")
		cmd.Dir = dir
		cmd.Env = readmeGoEnv(t, env)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestSnippet") {
			t.Fatalf("README.md:%d: the snippet as a test: %v\n%s\n%s", snippet.line, err, src, out)
		}
	})
}

// readmeFlow runs the README's second-shell block through bash exactly as
// written, with the emulator's export lines in its environment, and checks
// what it and its background "hubwire listen &" printed.
func readmeFlow(t *testing.T, ctx context.Context, flow readmeBlock, env []string) {
	// Both bash and the background listen write here; a file rather than a
	// pipe, so that bash's exit does not wait for listen's.
	outFile, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	errFile, err := os.Create(filepath.Join(t.TempDir(), "err"))
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	sh := exec.CommandContext(ctx, "bash", "-e", "-c", flow.body)
	sh.Env = env
	sh.Stdout = outFile
	sh.Stderr = errFile
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := sh.Process.Pid
	defer func() {
		// The background listen is still in bash's process group.
		syscall.Kill(-pgid, syscall.SIGKILL)
	}()
	err = sh.Wait()
	output := func() string {
		b, _ := os.ReadFile(outFile.Name())
		return string(b)
	}
	stderr := func() string {
		b, _ := os.ReadFile(errFile.Name())
		return string(b)
	}
	if err != nil {
		t.Fatalf("README.md:%d: bash -e of the second-shell block: %v\nstdout:\n%s\nstderr:\n%s", flow.line, err, output(), stderr())
	}
	// listen prints asynchronously: wait (bounded) for the C2D message, the
	// last thing sent to it.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(output(), `c2d      "hello device"`) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	// Ctrl-C for listen (bash has exited; only listen is left in the group).
	syscall.Kill(-pgid, syscall.SIGINT)
	for deadline := time.Now().Add(10 * time.Second); syscall.Kill(-pgid, 0) == nil; {
		if time.Now().After(deadline) {
			t.Errorf("hubwire listen & still runs 10 s after SIGINT")
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := output()
	for _, want := range []*regexp.Regexp{
		// listen, in the background (each line after its time of day)
		regexp.MustCompile(`(?m)^(\S+  )?desired  \$version 2 (\(full\) )?\{"interval":5\}$`),
		regexp.MustCompile(`(?m)^(\S+  )?method   reboot \{"delay":0\} -> 200 \(no payload\)$`),
		regexp.MustCompile(`(?m)^(\S+  )?c2d      "hello device" .*priority=high`),
		// the back end's commands
		regexp.MustCompile(`(?m)^desired \$version 2 `),
		regexp.MustCompile(`(?m)^\{\s*"status": ?200,\s*"payload": ?null\s*\}$`),
		regexp.MustCompile(`(?m)^queued message `),
		// the monitor line: the telemetry as the hub received it
		regexp.MustCompile(`(?m)^.*sensor  \{"temperature":21\.5\}  \[alert=false\]$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("the second-shell block printed nothing matching %s:\n%s\nstderr:\n%s", want, out, stderr())
		}
	}
	if !strings.Contains(stderr(), "listening as dev1") {
		t.Errorf("listen's stderr: %q", stderr())
	}
}

// readmeModule writes a module in a temporary directory holding file name
// with src, requiring this repository (replaced by root) with its go.sum,
// so that it builds offline from the module cache.
func readmeModule(t *testing.T, root, name, src string) string {
	t.Helper()
	dir := t.TempDir()
	goMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	modPath := moduleName(t, root)
	// The repository's own requirements, so that nothing has to be resolved.
	mod := regexp.MustCompile(`(?m)^module\s+\S+\s*$`).ReplaceAllString(string(goMod), "module example.com/readme")
	mod += "\nrequire " + modPath + " v0.0.0\n\nreplace " + modPath + " => " + root + "\n"
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for f, b := range map[string][]byte{"go.mod": []byte(mod), "go.sum": sum, name: []byte(src)} {
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// readmeGoEnv is env for the go tool building a readmeModule offline:
// the test's HOME is empty, so the module and build caches are named.
func readmeGoEnv(t *testing.T, env []string) []string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOPATH", "GOMODCACHE", "GOCACHE").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	v := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(v) != 3 {
		t.Fatalf("go env printed %q", out)
	}
	return append(append([]string(nil), env...), "GOPATH="+v[0], "GOMODCACHE="+v[1], "GOCACHE="+v[2],
		"GOFLAGS=-mod=mod -buildvcs=false", "GOPROXY=off", "GOWORK=off", "GOTOOLCHAIN=local")
}
