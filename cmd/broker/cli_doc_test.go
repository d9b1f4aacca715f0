package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
)

// docs/cli.md documents every command of the usage text, each in its own
// "### `broker …`" section, and every flag the command defines in that
// section.
func TestCLIDocCoversEveryCommand(t *testing.T) {
	data, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{} // "keys rotate" → its text
	heading := regexp.MustCompile("(?m)^### `broker ([a-z ]+)`\\s*$")
	locs := heading.FindAllStringSubmatchIndex(string(data), -1)
	for i, l := range locs {
		end := len(data)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		sections[string(data[l[2]:l[3]])] = string(data[l[1]:end])
	}

	commands := usageCommands(t)
	if len(commands) < 10 {
		t.Fatalf("read only %d commands from the usage text: %v", len(commands), commands)
	}
	flagLine := regexp.MustCompile(`(?m)^  -([a-z][a-z-]*)`)
	flags := 0
	for _, cmd := range commands {
		text, ok := sections[cmd]
		if !ok {
			t.Errorf("docs/cli.md has no section \"### `broker %s`\"", cmd)
			continue
		}
		// The command's own flag set prints its flags for -h.
		var stdout, stderr bytes.Buffer
		_ = run(context.Background(), append(strings.Fields(cmd), "-h"), func(string) string { return "" }, &stdout, &stderr)
		for _, m := range flagLine.FindAllStringSubmatch(stderr.String(), -1) {
			flags++
			if !regexp.MustCompile("`--" + m[1] + "[ `=]").MatchString(text) {
				t.Errorf("docs/cli.md, broker %s: flag --%s is not documented", cmd, m[1])
			}
		}
	}
	if flags < 12 {
		t.Errorf("read only %d flags from the commands' -h output: the check looks at nothing", flags)
	}
	for name := range sections {
		found := false
		for _, cmd := range commands {
			found = found || cmd == name
		}
		if !found && name != "help" {
			t.Errorf("docs/cli.md documents `broker %s`, which the usage text does not list", name)
		}
	}
}

// usageCommands are the commands of the usage text: on each command line,
// the words before the first flag or argument (and before the two spaces
// that start the description).
func usageCommands(t *testing.T) []string {
	t.Helper()
	_, after, ok := strings.Cut(usage, "commands:\n")
	if !ok {
		t.Fatal("usage has no commands: section")
	}
	word := regexp.MustCompile(`^[a-z]+$`)
	var out []string
	for _, line := range strings.Split(after, "\n") {
		line = strings.TrimSpace(line)
		if i := strings.Index(line, "  "); i >= 0 {
			line = line[:i]
		}
		var words []string
		for _, w := range strings.Fields(line) {
			if !word.MatchString(w) {
				break
			}
			words = append(words, w)
		}
		if len(words) > 0 {
			out = append(out, strings.Join(words, " "))
		}
	}
	return out
}
