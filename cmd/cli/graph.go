package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

func (a *app) graphCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "graph <name|file.yaml>",
		Short: "Print a pipeline as a Graphviz DOT or Mermaid graph",
		Example: `  cowrie-enrich graph refresh-ips | dot -Tsvg > refresh-ips.svg
  cowrie-enrich graph refresh-ips --format mermaid`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			plan, err := a.plan(args[0], nil)
			if err != nil {
				return err
			}
			switch format {
			case "dot":
				writeDOT(a.stdout, plan)
			case "mermaid":
				writeMermaid(a.stdout, plan)
			default:
				return usagef("--format must be dot or mermaid, got %q", format)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "dot", "dot (Graphviz) or mermaid")
	return cmd
}

// graphNode is one component as a graph shows it.
type graphNode struct {
	key, label string
}

// chain returns the main line of the plan (source, stages, sink) and the
// side sinks, with keys unique across kinds.
func chain(p *pipeline.Plan) (main []graphNode, side []graphNode) {
	node := func(prefix string, part pipeline.Part) graphNode {
		label := part.ID
		if part.ID != part.Spec.Name {
			label += " (" + part.Spec.Name + ")"
		}
		return graphNode{key: prefix + "_" + sanitize(part.ID), label: label}
	}
	main = append(main, node("source", p.Source))
	for _, s := range p.Stages {
		main = append(main, node("stage", s))
	}
	main = append(main, node("sink", p.Sink))
	for _, s := range p.SideSinks {
		side = append(side, node("side", s))
	}
	return main, side
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

func writeDOT(w io.Writer, p *pipeline.Plan) {
	main, side := chain(p)
	fmt.Fprintf(w, "digraph %q {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n", p.File.Name)
	for _, n := range append(append([]graphNode(nil), main...), side...) {
		fmt.Fprintf(w, "  %s [label=%q];\n", n.key, n.label)
	}
	for i := 1; i < len(main); i++ {
		fmt.Fprintf(w, "  %s -> %s;\n", main[i-1].key, main[i].key)
	}
	for _, s := range side {
		fmt.Fprintf(w, "  %s -> %s [style=dashed, label=\"committed\"];\n", main[len(main)-1].key, s.key)
	}
	fmt.Fprintln(w, "}")
}

func writeMermaid(w io.Writer, p *pipeline.Plan) {
	main, side := chain(p)
	fmt.Fprintln(w, "flowchart LR")
	for _, n := range append(append([]graphNode(nil), main...), side...) {
		fmt.Fprintf(w, "  %s[%q]\n", n.key, n.label)
	}
	for i := 1; i < len(main); i++ {
		fmt.Fprintf(w, "  %s --> %s\n", main[i-1].key, main[i].key)
	}
	for _, s := range side {
		fmt.Fprintf(w, "  %s -. committed .-> %s\n", main[len(main)-1].key, s.key)
	}
}
