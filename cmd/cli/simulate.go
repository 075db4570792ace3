package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cowrie-enrich/cowrie-enrich/internal/simulate"
)

func (a *app) simulateCmd() *cobra.Command {
	var (
		opts   simulate.Options
		geoDir string
	)
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Run simulated Team Cymru, GreyNoise and MaxMind providers on loopback until Ctrl-C",
		Long: `Start the simulated providers the demo uses — Team Cymru bulk whois and DNS,
the GreyNoise API and a GeoLite2-shaped City/ASN pair — on loopback, so you
can try your own configs and custom stages offline. It prints the --set
overrides that point a pipeline at them and runs until interrupted. The
networks and organisations are invented.`,
		Example: `  cowrie-enrich simulate --whois-addr 127.0.0.1:4343 --greynoise-addr 127.0.0.1:8080
  cowrie-enrich run my.yaml --set stages.cymru.with.whois_addr=127.0.0.1:4343 …`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := geoDir
			if dir == "" {
				tmp, err := os.MkdirTemp("", "cowrie-enrich-simulate-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				dir = tmp
			}
			svc, err := simulate.Start(dir, opts)
			if err != nil {
				return usageError{err}
			}
			defer svc.Close()
			fmt.Fprintf(a.stdout, "simulated Team Cymru whois  %s\nsimulated Team Cymru DNS    %s\nsimulated GreyNoise API     %s\nGeoLite2-shaped files       %s, %s\n\n",
				svc.WhoisAddr, svc.DNSAddr, svc.GreyNoiseURL, svc.CityDB, svc.ASNDB)
			fmt.Fprintf(a.stdout, "Point a pipeline at them with:\n  --set %s\n\nPress Ctrl-C to stop.\n", strings.Join(svc.Sets(), " \\\n  --set "))
			<-cmd.Context().Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.WhoisAddr, "whois-addr", "", "loopback host:port of the bulk whois service (default: a free port)")
	cmd.Flags().StringVar(&opts.DNSAddr, "dns-addr", "", "loopback host:port of the DNS service, UDP and TCP (default: a free port)")
	cmd.Flags().StringVar(&opts.GreyNoiseAddr, "greynoise-addr", "", "loopback host:port of the GreyNoise API (default: a free port)")
	cmd.Flags().StringVar(&geoDir, "geoip-dir", "", "directory for the generated .mmdb files, kept afterwards (default: a temporary one)")
	cmd.Flags().DurationVar(&opts.CymruLatency, "cymru-latency", 0, "delay added before every whois answer, e.g. 150ms")
	cmd.Flags().Float64Var(&opts.GreyNoiseRate, "greynoise-rate", 0, "requests per second the GreyNoise API allows (0: no limit), to try rate limiting")
	cmd.Flags().StringVar(&opts.GreyNoiseKey, "greynoise-key", "", "API key the GreyNoise API accepts (default: any)")
	return cmd
}
