// Package searchindex is the message search index in Elasticsearch: its
// definition, the folding and query shape the application applies to it,
// and typed operations on a cluster. It is the one package that speaks to
// Elasticsearch; callers never see the client or its answers.
package searchindex

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// Config says how to reach a cluster.
type Config struct {
	URL string
	// Transport makes the HTTP requests; nil is http.DefaultTransport.
	Transport http.RoundTripper
}

// Client is a connection to a cluster.
type Client struct {
	es *elasticsearch.Client
}

// Open returns a client of the cluster at cfg.URL. It does not connect.
func Open(cfg Config) (*Client, error) {
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{cfg.URL}, Transport: cfg.Transport})
	if err != nil {
		return nil, err
	}
	return &Client{es: es}, nil
}

// Error is an answer with an error status.
type Error struct {
	Op     string // what was asked
	Status int
	Body   string // the start of the answer
}

func (e *Error) Error() string {
	return fmt.Sprintf("elasticsearch: %s: %d %s: %s", e.Op, e.Status, http.StatusText(e.Status), e.Body)
}

// HasStatus reports whether err is an answer with one of the statuses.
func HasStatus(err error, statuses ...int) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	for _, s := range statuses {
		if e.Status == s {
			return true
		}
	}
	return false
}

// answer reads the answer to a request op: a successful one into out (nil:
// discarded), an error status as *Error. It always closes the body.
func answer(op string, res *esapi.Response, err error, out any) error {
	if err != nil {
		return fmt.Errorf("elasticsearch: %s: %w", op, err)
	}
	defer res.Body.Close()
	if res.IsError() {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return &Error{Op: op, Status: res.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		return nil
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return fmt.Errorf("elasticsearch: %s: read the answer: %w", op, err)
	}
	return nil
}

// exists reads the answer to a HEAD request: whether it found what it asked.
func exists(op string, res *esapi.Response, err error) (bool, error) {
	if err != nil {
		return false, fmt.Errorf("elasticsearch: %s: %w", op, err)
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK, nil
}

// Ping checks that the cluster answers.
func (c *Client) Ping(ctx context.Context) error {
	res, err := c.es.Ping(c.es.Ping.WithContext(ctx))
	return answer("ping", res, err, nil)
}

// Version returns the version number the cluster reports.
func (c *Client) Version(ctx context.Context) (string, error) {
	var info struct {
		Version struct {
			Number string `json:"number"`
		} `json:"version"`
	}
	res, err := c.es.Info(c.es.Info.WithContext(ctx))
	if err := answer("info", res, err, &info); err != nil {
		return "", err
	}
	return info.Version.Number, nil
}

// Field is a field of a mapping, with its sub-fields.
type Field struct {
	Type   string           `json:"type"`
	Fields map[string]Field `json:"fields"`
}

// Mapping returns the fields an index maps.
func (c *Client) Mapping(ctx context.Context, index string) (map[string]Field, error) {
	var mappings map[string]struct {
		Mappings struct {
			Properties map[string]Field `json:"properties"`
		} `json:"mappings"`
	}
	res, err := c.es.Indices.GetMapping(c.es.Indices.GetMapping.WithIndex(index), c.es.Indices.GetMapping.WithContext(ctx))
	if err := answer("get mapping of "+index, res, err, &mappings); err != nil {
		return nil, err
	}
	return mappings[index].Mappings.Properties, nil
}

// aliasTargets returns the indices an alias points at, in name order; none
// when there is no such alias.
func (c *Client) aliasTargets(ctx context.Context, alias string) ([]string, error) {
	var targets map[string]json.RawMessage
	res, err := c.es.Indices.GetAlias(c.es.Indices.GetAlias.WithName(alias), c.es.Indices.GetAlias.WithContext(ctx))
	err = answer("get alias "+alias, res, err, &targets)
	if HasStatus(err, http.StatusNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(targets))
	for name := range targets {
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}
