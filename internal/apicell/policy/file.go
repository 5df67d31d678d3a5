package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"go.yaml.in/yaml/v3"
)

// readFile reads a policy file: a YAML (or JSON) map of rule name to check
// string or legacy list. An empty file overrides nothing.
func readFile(path string) (map[string]source, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &LoadError{File: path, Err: err}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &LoadError{File: path, Err: fmt.Errorf("%w: %v", ErrFileFormat, err)}
	}
	out := map[string]source{}
	if len(doc.Content) == 0 {
		return out, nil
	}
	root := resolve(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return out, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &LoadError{File: path, Err: fmt.Errorf("%w: line %d: the top level is a %s", ErrFileFormat, root.Line, kindName(root))}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := resolve(root.Content[i]), resolve(root.Content[i+1])
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			return nil, &LoadError{File: path, Err: fmt.Errorf("%w: line %d: a rule name is a %s, not a string", ErrFileFormat, k.Line, kindName(k))}
		}
		name := k.Value
		if _, dup := out[name]; dup {
			return nil, &LoadError{File: path, Rule: name, Err: fmt.Errorf("%w: again on line %d", ErrDuplicate, k.Line)}
		}
		src, err := sourceOf(v)
		if err != nil {
			return nil, &LoadError{File: path, Rule: name, Err: fmt.Errorf("%w: line %d: %v", ErrFileFormat, v.Line, err)}
		}
		out[name] = src
	}
	return out, nil
}

// sourceOf reads one rule: a string, or a list whose items are strings or
// lists of strings.
func sourceOf(v *yaml.Node) (source, error) {
	switch v.Kind {
	case yaml.ScalarNode:
		if v.ShortTag() != "!!str" {
			return source{}, fmt.Errorf("the rule is a %s, not a string (quote it; \"\" allows everyone)", kindName(v))
		}
		return source{text: v.Value}, nil
	case yaml.SequenceNode:
		src := source{isList: true, list: make([][]string, 0, len(v.Content))}
		for _, item := range v.Content {
			item = resolve(item)
			var and []string
			switch {
			case isString(item):
				and = []string{item.Value}
			case item.Kind == yaml.SequenceNode:
				for _, c := range item.Content {
					c = resolve(c)
					if !isString(c) {
						return source{}, fmt.Errorf("a list rule holds a %s, not a string", kindName(c))
					}
					and = append(and, c.Value)
				}
			default:
				return source{}, fmt.Errorf("a list rule holds a %s, not a string or list", kindName(item))
			}
			src.list = append(src.list, and)
		}
		return src, nil
	}
	return source{}, fmt.Errorf("the rule is a %s, not a string or list", kindName(v))
}

func isString(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str"
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "map"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!bool":
			return "boolean"
		case "!!int", "!!float":
			return "number"
		case "!!str":
			return "string"
		}
		return "value " + n.ShortTag()
	}
	return "node"
}
