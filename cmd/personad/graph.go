package main

import (
	"context"
	"fmt"
	"io"

	"github.com/personad/personad/engine"
)

type graphCommand struct {
	stdout io.Writer
	format string
}

func (c *graphCommand) ParseFlags(args []string) error {
	fs := newFlagSet("graph", "graph [-format dot|mermaid]", c.stdout)
	fs.StringVar(&c.format, "format", "dot", "output format: dot (Graphviz) or mermaid")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.format != "dot" && c.format != "mermaid" {
		return withHint(fmt.Errorf("unknown format %q", c.format), "personad graph -format dot|mermaid")
	}
	return nil
}

func (c *graphCommand) Run(context.Context) error {
	if c.format == "mermaid" {
		_, err := io.WriteString(c.stdout, engine.GraphMermaid())
		return err
	}
	_, err := io.WriteString(c.stdout, engine.GraphDOT())
	return err
}
