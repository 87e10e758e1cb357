package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

type versionCommand struct{ stdout io.Writer }

func (c *versionCommand) ParseFlags(args []string) error {
	return newFlagSet("version", "version", c.stdout).Parse(args)
}

func (c *versionCommand) Run(context.Context) error {
	_, err := fmt.Fprintln(c.stdout, "personad", Version())
	return err
}

// Version returns the injected version, else the module version or VCS
// revision recorded in the binary, else "devel".
func Version() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "devel"
}
