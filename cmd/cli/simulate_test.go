package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/cmd/cli"
)

// TestSimulateServesTheProvidersOnChosenPorts starts `simulate` on chosen
// loopback ports, asks its whois and GreyNoise services as a client would,
// and stops it with a cancel (Ctrl-C).
func TestSimulateServesTheProvidersOnChosenPorts(t *testing.T) {
	whois, gn, dns := freeAddr(t), freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		code := cli.Main(ctx, cli.DefaultRegistry(), []string{"simulate", "--whois-addr", whois, "--greynoise-addr", gn, "--dns-addr", dns}, pw, io.Discard)
		pw.Close()
		done <- code
	}()
	out := bufio.NewScanner(pr)
	var printed []string
	for out.Scan() && !strings.HasPrefix(out.Text(), "Press Ctrl-C") {
		printed = append(printed, out.Text())
	}
	go io.Copy(io.Discard, pr)
	all := strings.Join(printed, "\n")
	for _, want := range []string{"simulated Team Cymru whois  " + whois, "simulated GreyNoise API     http://" + gn, "--set stages.cymru.with.whois_addr=" + whois} {
		if !strings.Contains(all, want) {
			t.Errorf("output lacks %q:\n%s", want, all)
		}
	}

	c, err := net.DialTimeout("tcp", whois, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "begin\nverbose\n45.142.120.5\nend\n")
	answer, _ := io.ReadAll(c)
	c.Close()
	if !strings.Contains(string(answer), "64601") || !strings.Contains(string(answer), "SIM-BULLETPROOF-HOSTING") {
		t.Errorf("whois answer lacks the simulated AS:\n%s", answer)
	}

	resp, err := http.Get("http://" + gn + "/v3/community/45.142.120.5")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Noise          bool   `json:"noise"`
		Classification string `json:"classification"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !body.Noise || body.Classification != "malicious" {
		t.Errorf("GreyNoise answer %s %+v, want 200 with a malicious scanner", resp.Status, body)
	}

	cancel()
	if code := <-done; code != cli.ExitOK {
		t.Errorf("exit %d after Ctrl-C, want 0", code)
	}
}

func TestSimulateRefusesNonLoopback(t *testing.T) {
	code, _, errOut := invoke(t, context.Background(), nil, "simulate", "--whois-addr", "0.0.0.0:4343")
	if code != cli.ExitUsage || !strings.Contains(errOut, "only listen on loopback") {
		t.Errorf("exit %d, %q", code, errOut)
	}
}
