package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"
)

// The tests in this file hold api/openapi.yaml to the router: the same
// routes, and for each the statuses its handler can answer.

// oaRoute is a method and a path whose parameters are named by what they
// identify ({token}, {chat}, {message}), so the router's names and the
// document's names compare.
type oaRoute struct{ method, path string }

func (r oaRoute) String() string { return r.method + " " + r.path }

// oaRouteSpec is what one route's handler can answer.
type oaRouteSpec struct {
	// statuses is every status the handler can answer; the document must
	// list exactly these for the operation.
	statuses []int
	// probes are requests the handler refuses before it uses any dependency,
	// so they run against a router built without any. Routes whose statuses
	// include 415 are also probed for 400, 413 and 415 (their body is decoded
	// before anything else happens).
	probes []oaProbe
}

type oaProbe struct {
	path   string // with parameters filled in; the query string is kept
	body   string
	status int
	code   string
}

var (
	oaCommandStatuses = []int{400, 404, 408, 409, 413, 415, 422, 429, 500, 503} // a command on an existing resource
	oaSeedGetStatuses = []int{400, 404, 408, 413, 415, 422, 429, 500, 503}      // the seed's GET of a chat, which reads a body
	oaReadStatuses    = []int{404, 429, 500, 503}                               // a read of one resource
	oaListStatuses    = []int{404, 422, 429, 500, 503}                          // a list or a search: page and per_page are validated
)

func oaWithSuccess(success int, rest []int) []int { return append([]int{success}, rest...) }

// oaToken is a token of the right shape that names no application.
const oaToken = "aaaaaaaaaaaaaaaaaaaaaaaaaa"

// oaRouteSpecs lists every route of the API. A route added to the router must
// be added here and to api/openapi.yaml.
var oaRouteSpecs = map[oaRoute]oaRouteSpec{
	{"GET", "/healthz"}:      {statuses: []int{200, 500}},
	{"GET", "/readyz"}:       {statuses: []int{200, 500, 503}},
	{"GET", "/metrics"}:      {statuses: []int{200, 500}},
	{"GET", "/openapi.yaml"}: {statuses: []int{200, 500}},

	{"POST", "/applications"}: {statuses: []int{201, 400, 408, 409, 413, 415, 422, 429, 500, 503}},
	{"GET", "/applications/{token}"}: {statuses: oaWithSuccess(200, oaReadStatuses), probes: []oaProbe{
		{path: "/applications/x", status: 404, code: "not_found"},
	}},
	{"PATCH", "/applications/{token}"}: {statuses: oaWithSuccess(200, oaCommandStatuses)},
	{"GET", "/applications/{token}/chats"}: {statuses: oaWithSuccess(200, append([]int{400}, oaListStatuses...)), probes: []oaProbe{
		{path: "/applications/x/chats", status: 404, code: "not_found"},
		{path: "/applications/" + oaToken + "/chats?per_page=0", status: 422, code: "validation_failed"},
		{path: "/applications/" + oaToken + "/chats?before=x", status: 400, code: "invalid_cursor"},
	}},
	{"POST", "/applications/{token}/chats"}: {statuses: oaWithSuccess(201, oaCommandStatuses)},
	{"GET", "/applications/{token}/chats/{chat}"}: {statuses: oaWithSuccess(200, oaReadStatuses), probes: []oaProbe{
		{path: "/applications/x/chats/1", status: 404, code: "not_found"},
		{path: "/applications/" + oaToken + "/chats/0", status: 404, code: "not_found"},
	}},
	{"PATCH", "/applications/{token}/chats/{chat}"}: {statuses: oaWithSuccess(200, oaCommandStatuses), probes: []oaProbe{
		{path: "/applications/" + oaToken + "/chats/one", body: `{"name":"a"}`, status: 404, code: "not_found"},
	}},
	{"GET", "/applications/{token}/chats/{chat}/messages"}: {statuses: oaWithSuccess(200, append([]int{400}, oaListStatuses...)), probes: []oaProbe{
		{path: "/applications/" + oaToken + "/chats/0/messages", status: 404, code: "not_found"},
		{path: "/applications/" + oaToken + "/chats/1/messages?page=0", status: 422, code: "validation_failed"},
		{path: "/applications/" + oaToken + "/chats/1/messages?per_page=1001", status: 422, code: "validation_failed"},
		{path: "/applications/" + oaToken + "/chats/1/messages?after=x", status: 400, code: "invalid_cursor"},
		{path: "/applications/" + oaToken + "/chats/1/messages?after=1&wait=2h", status: 400, code: "invalid_cursor"},
		{path: "/applications/" + oaToken + "/chats/1/messages?after=1&page=2", status: 400, code: "invalid_cursor"},
	}},
	{"GET", "/applications/{token}/chats/{chat}/messages/stream"}: {statuses: []int{200, 400, 404, 429, 500, 503}, probes: []oaProbe{
		{path: "/applications/x/chats/1/messages/stream", status: 404, code: "not_found"},
		{path: "/applications/" + oaToken + "/chats/1/messages/stream?after=-1", status: 400, code: "invalid_cursor"},
	}},
	{"POST", "/applications/{token}/chats/{chat}/messages"}: {statuses: oaWithSuccess(201, oaCommandStatuses), probes: []oaProbe{
		{path: "/applications/" + oaToken + "/chats/0/messages", body: `{"body":"b"}`, status: 404, code: "not_found"},
	}},
	{"GET", "/applications/{token}/chats/{chat}/messages/search"}: {statuses: oaWithSuccess(200, oaListStatuses), probes: []oaProbe{
		{path: "/applications/x/chats/1/messages/search?q=hello", status: 404, code: "not_found"},
		{path: "/applications/" + oaToken + "/chats/0/messages/search?q=hello", status: 404, code: "not_found"},
		{path: "/applications/" + oaToken + "/chats/1/messages/search?q=hello&per_page=0", status: 422, code: "validation_failed"},
		// Built without Elasticsearch, the router answers that search is unavailable.
		{path: "/applications/" + oaToken + "/chats/1/messages/search?q=hello", status: 503, code: "unavailable"},
	}},
	{"GET", "/applications/{token}/chats/{chat}/messages/{message}"}: {statuses: oaWithSuccess(200, oaReadStatuses), probes: []oaProbe{
		{path: "/applications/" + oaToken + "/chats/1/messages/0", status: 404, code: "not_found"},
	}},
	{"PATCH", "/applications/{token}/chats/{chat}/messages/{message}"}: {statuses: oaWithSuccess(200, oaCommandStatuses), probes: []oaProbe{
		{path: "/applications/" + oaToken + "/chats/1/messages/0", body: `{"body":"b"}`, status: 404, code: "not_found"},
	}},
	{"DELETE", "/applications/{token}/chats/{chat}/messages/{message}"}: {statuses: oaWithSuccess(204, oaCommandStatuses), probes: []oaProbe{
		{path: "/applications/" + oaToken + "/chats/1/messages/0", status: 404, code: "not_found"},
	}},

	// The seed's routes.
	{"POST", "/chats"}: {statuses: oaWithSuccess(201, oaCommandStatuses), probes: []oaProbe{
		{path: "/chats", body: `{"name":"a"}`, status: 422, code: "validation_failed"},
	}},
	{"GET", "/chats/{chat}"}: {statuses: oaWithSuccess(200, oaSeedGetStatuses), probes: []oaProbe{
		{path: "/chats/1", status: 422, code: "validation_failed"},
		{path: "/chats/1?app_token=x", status: 404, code: "not_found"},
		{path: "/chats/1", body: `{"app_token":"x"}`, status: 404, code: "not_found"},
	}},
	{"PATCH", "/chats/{chat}"}: {statuses: oaWithSuccess(200, oaCommandStatuses), probes: []oaProbe{
		{path: "/chats/1", body: `{"name":"a"}`, status: 422, code: "validation_failed"},
	}},
	{"GET", "/chats/{token}/{chat}/messages"}: {statuses: oaWithSuccess(200, append([]int{400}, oaListStatuses...)), probes: []oaProbe{
		{path: "/chats/x/1/messages", status: 404, code: "not_found"},
		{path: "/chats/" + oaToken + "/1/messages?per_page=x", status: 422, code: "validation_failed"},
	}},
	{"GET", "/chats/{token}/{chat}/search/{param}"}: {statuses: oaWithSuccess(200, oaListStatuses), probes: []oaProbe{
		{path: "/chats/x/1/search/hello", status: 404, code: "not_found"},
		{path: "/chats/" + oaToken + "/one/search/hello", status: 404, code: "not_found"},
		{path: "/chats/" + oaToken + "/1/search/hello?page=0", status: 422, code: "validation_failed"},
		{path: "/chats/" + oaToken + "/1/search/hello", status: 503, code: "unavailable"},
	}},
	{"GET", "/messages/{token}/{chat}/{message}"}: {statuses: oaWithSuccess(200, oaReadStatuses), probes: []oaProbe{
		{path: "/messages/x/1/1", status: 404, code: "not_found"},
		{path: "/messages/" + oaToken + "/-1/1", status: 404, code: "not_found"},
	}},
	{"POST", "/messages"}: {statuses: oaWithSuccess(201, oaCommandStatuses), probes: []oaProbe{
		{path: "/messages", body: `{"body":"b","app_token":"x"}`, status: 422, code: "validation_failed"},
		{path: "/messages", body: `{"body":"b","chat_number":1}`, status: 422, code: "validation_failed"},
		{path: "/messages", body: `{"body":"b","chat_number":"one","app_token":"x"}`, status: 400, code: "invalid_json"},
		{path: "/messages", body: `{"body":"b","chat_number":0,"app_token":"x"}`, status: 404, code: "not_found"},
	}},
	{"PATCH", "/messages/{message}"}: {statuses: oaWithSuccess(200, oaCommandStatuses), probes: []oaProbe{
		{path: "/messages/1", body: `{"body":"b","app_token":"x"}`, status: 422, code: "validation_failed"},
	}},
	{"DELETE", "/messages/{message}"}: {statuses: oaWithSuccess(204, oaCommandStatuses), probes: []oaProbe{
		{path: "/messages/1", status: 422, code: "validation_failed"},
		{path: "/messages/1?app_token=x", status: 422, code: "validation_failed"},
		{path: "/messages/0?app_token=x&chat_number=1", status: 404, code: "not_found"},
		{path: "/messages/1?chat_number=one", body: `{"app_token":"x"}`, status: 422, code: "validation_failed"},
	}},
}

// oaOperational are the routes that serve operations, not clients' data.
var oaOperational = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true, "/openapi.yaml": true}

// oaParamRoles names path parameters by what they identify.
var oaParamRoles = map[string]string{
	"token": "token", "app_token": "token",
	"chat": "chat", "chat_number": "chat",
	"message": "message", "message_number": "message", "number": "message",
}

var oaParamPattern = regexp.MustCompile(`\{([^}:]+)(:[^}]*)?\}`)

func oaNormalise(path string) string {
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	return oaParamPattern.ReplaceAllStringFunc(path, func(p string) string {
		name := oaParamPattern.FindStringSubmatch(p)[1]
		if role, ok := oaParamRoles[name]; ok {
			return "{" + role + "}"
		}
		return "{param}"
	})
}

// The parts of an OpenAPI document the tests read.
type oaDocument struct {
	OpenAPI         string                          `yaml:"openapi"`
	RouterResponses map[string]oaResponse           `yaml:"x-router-responses"`
	Paths           map[string]map[string]yaml.Node `yaml:"paths"`
	Components      struct {
		Responses  map[string]oaResponse  `yaml:"responses"`
		Parameters map[string]oaParameter `yaml:"parameters"`
		Schemas    map[string]any         `yaml:"schemas"`
	} `yaml:"components"`
}

type oaOperation struct {
	OperationID string                `yaml:"operationId"`
	Parameters  []oaParameter         `yaml:"parameters"`
	Responses   map[string]oaResponse `yaml:"responses"`
}

type oaParameter struct {
	Ref  string `yaml:"$ref"`
	Name string `yaml:"name"`
	In   string `yaml:"in"`
}

type oaResponse struct {
	Ref     string                 `yaml:"$ref"`
	Headers map[string]any         `yaml:"headers"`
	Content map[string]oaMediaType `yaml:"content"`
}

type oaMediaType struct {
	Schema  map[string]any `yaml:"schema"`
	Example any            `yaml:"example"`
}

var oaMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

type oaDocumented struct {
	docPath   string
	op        oaOperation
	pathLevel []oaParameter
}

func oaLoad(t *testing.T) (oaDocument, map[oaRoute]oaDocumented) {
	t.Helper()
	var doc oaDocument
	if err := yaml.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	ops := map[oaRoute]oaDocumented{}
	for p, item := range doc.Paths {
		var pathLevel []oaParameter
		if n, ok := item["parameters"]; ok {
			if err := n.Decode(&pathLevel); err != nil {
				t.Fatalf("%s parameters: %v", p, err)
			}
		}
		for key, n := range item {
			if !slices.Contains(oaMethods, key) {
				continue
			}
			var op oaOperation
			if err := n.Decode(&op); err != nil {
				t.Fatalf("%s %s: %v", key, p, err)
			}
			r := oaRoute{strings.ToUpper(key), oaNormalise(p)}
			if prev, dup := ops[r]; dup {
				t.Errorf("%s is documented twice: %s and %s", r, prev.docPath, p)
			}
			ops[r] = oaDocumented{docPath: p, op: op, pathLevel: pathLevel}
		}
	}
	return doc, ops
}

func (d oaDocument) response(t *testing.T, r oaResponse) oaResponse {
	t.Helper()
	if r.Ref == "" {
		return r
	}
	name, ok := strings.CutPrefix(r.Ref, "#/components/responses/")
	res, found := d.Components.Responses[name]
	if !ok || !found {
		t.Fatalf("unresolvable response reference %q", r.Ref)
	}
	return d.response(t, res)
}

func (d oaDocument) parameter(t *testing.T, p oaParameter) oaParameter {
	t.Helper()
	if p.Ref == "" {
		return p
	}
	name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/")
	res, found := d.Components.Parameters[name]
	if !ok || !found {
		t.Fatalf("unresolvable parameter reference %q", p.Ref)
	}
	return res
}

// oaErrorCodes returns the error codes a response's JSON schema allows: the
// const or enum of error.code in the schema or its allOf branches.
func oaErrorCodes(schema map[string]any) []string {
	var codes []string
	var walk func(s map[string]any)
	walk = func(s map[string]any) {
		for _, b := range oaSlice(s["allOf"]) {
			if m, ok := b.(map[string]any); ok {
				walk(m)
			}
		}
		code := oaDig(s, "properties", "error", "properties", "code")
		if c, ok := code["const"].(string); ok {
			codes = append(codes, c)
		}
		for _, e := range oaSlice(code["enum"]) {
			if c, ok := e.(string); ok {
				codes = append(codes, c)
			}
		}
	}
	walk(schema)
	return codes
}

// oaRefersTo reports whether schema is, or has an allOf branch that is, ref.
func oaRefersTo(schema map[string]any, ref string) bool {
	if schema["$ref"] == ref {
		return true
	}
	for _, b := range oaSlice(schema["allOf"]) {
		if m, ok := b.(map[string]any); ok && oaRefersTo(m, ref) {
			return true
		}
	}
	return false
}

func oaDig(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, _ := m[k].(map[string]any)
		if next == nil {
			return map[string]any{}
		}
		m = next
	}
	return m
}

func oaSlice(v any) []any { s, _ := v.([]any); return s }

// oaRouted is one route of the router.
type oaRouted struct {
	handler     string // the handler function's name, for messages
	limited     bool   // behind the bound on commands in flight
	readLimited bool   // behind the bound on reads in flight
}

func oaRouter(t *testing.T) http.Handler {
	t.Helper()
	return NewHandler(Deps{
		Registry:    prometheus.NewRegistry(),
		Log:         slog.New(slog.DiscardHandler),
		MaxInFlight: 8,

		MaxReadsInFlight: 8,
	})
}

func oaWalk(t *testing.T, h http.Handler) map[oaRoute]oaRouted {
	t.Helper()
	routes, ok := h.(chi.Routes)
	if !ok {
		t.Fatalf("NewHandler returned a %T, not a chi router", h)
	}
	out := map[oaRoute]oaRouted{}
	err := chi.Walk(routes, func(method, path string, handler http.Handler, mws ...func(http.Handler) http.Handler) error {
		r := oaRoute{method, oaNormalise(path)}
		info := oaRouted{handler: oaFuncName(handler)}
		for _, mw := range mws {
			if strings.HasSuffix(oaFuncName(mw), ".limit-fm") {
				info.limited = true
			}
			// Lists and streams have bounds of their own (admitListing,
			// admitStream), which a read past them meets alike.
			if n := oaFuncName(mw); strings.HasSuffix(n, ".limitReads-fm") || strings.HasSuffix(n, ".admitListing-fm") || strings.HasSuffix(n, ".admitStream-fm") {
				info.readLimited = true
			}
		}
		out[r] = info
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func oaFuncName(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Func {
		return fmt.Sprintf("%T", v)
	}
	if f := runtime.FuncForPC(rv.Pointer()); f != nil {
		return f.Name()
	}
	return "?"
}

func oaSortedStatuses(responses map[string]oaResponse) []string {
	var out []string
	for s := range responses {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func oaStatusStrings(codes []int) []string {
	out := make([]string, len(codes))
	for i, c := range codes {
		out[i] = fmt.Sprint(c)
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIDocumentsEveryRoute compares the router's routes with the
// document's operations, and each operation's statuses with what its
// handler can answer.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	t.Parallel()
	doc, ops := oaLoad(t)
	router := oaWalk(t, oaRouter(t))
	if len(router) < 20 {
		t.Fatalf("walking the router found only %d routes: %v", len(router), router)
	}

	for r, info := range router {
		if _, ok := ops[r]; !ok {
			t.Errorf("%s (%s) is routed but not documented in api/openapi.yaml", r, info.handler)
		}
		if _, ok := oaRouteSpecs[r]; !ok {
			t.Errorf("%s (%s) is routed but missing from oaRouteSpecs in openapi_test.go", r, info.handler)
		}
	}
	for r, d := range ops {
		if _, ok := router[r]; !ok {
			t.Errorf("%s is documented (%s %s) but not routed", r, r.method, d.docPath)
		}
		spec, ok := oaRouteSpecs[r]
		if !ok {
			t.Errorf("%s is documented but missing from oaRouteSpecs in openapi_test.go", r)
			continue
		}
		if got, want := oaSortedStatuses(d.op.Responses), oaStatusStrings(spec.statuses); !slices.Equal(got, want) {
			t.Errorf("%s %s documents statuses %v; its handler can answer %v", r.method, d.docPath, got, want)
		}
	}
	for r := range oaRouteSpecs {
		_, isRouted := router[r]
		_, isDocumented := ops[r]
		if !isRouted && !isDocumented {
			t.Errorf("oaRouteSpecs lists %s, which is neither routed nor documented", r)
		}
	}

	// Commands and reads are bounded in flight, each apart; past the bound
	// they answer 503 overloaded, which the document must allow. The
	// operational routes are not bounded.
	for r, info := range router {
		isCommand := r.method == http.MethodPost || r.method == http.MethodPatch || r.method == http.MethodDelete
		if isCommand != info.limited {
			t.Errorf("%s (%s): command %v but behind the in-flight bound %v", r, info.handler, isCommand, info.limited)
		}
		isRead := r.method == http.MethodGet && !oaOperational[r.path]
		if isRead != info.readLimited {
			t.Errorf("%s (%s): read %v but behind the bound on reads %v", r, info.handler, isRead, info.readLimited)
		}
		d, ok := ops[r]
		if !info.limited && !info.readLimited || !ok {
			continue
		}
		res, ok := d.op.Responses["503"]
		if !ok {
			continue // reported above
		}
		res = doc.response(t, res)
		if !slices.Contains(oaErrorCodes(res.Content["application/json"].Schema), "overloaded") {
			t.Errorf("%s %s: the 503 response does not allow code overloaded", r.method, d.docPath)
		}
	}
}

// TestOpenAPIResponses checks the shape of every documented response: the
// headers each kind of answer carries, a schema for every body, the error
// body for every error.
func TestOpenAPIResponses(t *testing.T) {
	t.Parallel()
	doc, ops := oaLoad(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi is %q; want 3.1.x", doc.OpenAPI)
	}
	for _, s := range []string{"404", "405", "414"} {
		if _, ok := doc.RouterResponses[s]; !ok {
			t.Errorf("x-router-responses lacks %s", s)
		}
	}
	check := func(where, status string, res oaResponse, isList bool) {
		res = doc.response(t, res)
		if _, ok := res.Headers["X-Request-Id"]; !ok {
			t.Errorf("%s %s: no X-Request-Id header", where, status)
		}
		if len(res.Content) == 0 && status != "204" {
			t.Errorf("%s %s: no content", where, status)
		}
		for mt, m := range res.Content {
			if len(m.Schema) == 0 {
				t.Errorf("%s %s %s: no schema", where, status, mt)
			}
		}
		switch {
		case status == "201":
			if _, ok := res.Headers["Location"]; !ok {
				t.Errorf("%s 201: no Location header", where)
			}
		case status == "200" && isList:
			for _, h := range []string{"Link", "X-Total-Count"} {
				if _, ok := res.Headers[h]; !ok {
					t.Errorf("%s 200: no %s header", where, h)
				}
			}
			if res.Content["application/json"].Schema["type"] != "array" {
				t.Errorf("%s 200: a list answers an array", where)
			}
		case status == "409" || status == "429" || status == "503":
			if _, ok := res.Headers["Retry-After"]; !ok {
				t.Errorf("%s %s: no Retry-After header", where, status)
			}
		}
		if status >= "400" && where != "GET /readyz" {
			m, ok := res.Content["application/json"]
			if !ok || !oaRefersTo(m.Schema, "#/components/schemas/Error") {
				t.Errorf("%s %s: an error answers application/json with the Error schema", where, status)
			}
			if len(oaErrorCodes(m.Schema)) == 0 {
				t.Errorf("%s %s: the schema does not say which error codes", where, status)
			}
		}
	}
	for status, res := range doc.RouterResponses {
		check("x-router-responses", status, res, false)
	}
	for r, d := range ops {
		params := map[string]bool{}
		for _, p := range append(slices.Clone(d.pathLevel), d.op.Parameters...) {
			p = doc.parameter(t, p)
			params[p.In+":"+p.Name] = true
		}
		isList := params["query:page"]
		if isList != params["query:per_page"] {
			t.Errorf("%s %s: page and per_page go together", r.method, d.docPath)
		}
		if !params["header:X-Request-Id"] {
			t.Errorf("%s %s: the X-Request-Id request header is not documented", r.method, d.docPath)
		}
		isCommand := r.method == http.MethodPost || r.method == http.MethodPatch || r.method == http.MethodDelete
		if params["header:Idempotency-Key"] != isCommand {
			t.Errorf("%s %s: documents the Idempotency-Key header %v; a command takes it, nothing else does", r.method, d.docPath, !isCommand)
		}
		for _, m := range oaParamPattern.FindAllStringSubmatch(d.docPath, -1) {
			if !params["path:"+m[1]] {
				t.Errorf("%s %s: path parameter %s is not documented", r.method, d.docPath, m[1])
			}
		}
		if d.op.OperationID == "" {
			t.Errorf("%s %s: no operationId", r.method, d.docPath)
		}
		for status, res := range d.op.Responses {
			check(r.method+" "+d.docPath, status, res, isList)
		}
	}
}

// TestOpenAPIProbes sends each route requests that its handler refuses
// before it uses any dependency, and checks that the answer is one the
// document lists for the operation, with the error code the document allows.
func TestOpenAPIProbes(t *testing.T) {
	t.Parallel()
	doc, ops := oaLoad(t)
	h := oaRouter(t)
	router := oaWalk(t, h)

	send := func(method, path, contentType, body string, keys ...string) *httptest.ResponseRecorder {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req := httptest.NewRequest(method, path, rd)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		for _, k := range keys {
			req.Header.Add("Idempotency-Key", k)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	expect := func(what string, w *httptest.ResponseRecorder, status int, code string, listed map[string]oaResponse) {
		t.Helper()
		if w.Code != status {
			t.Errorf("%s: status %d (%s); want %d", what, w.Code, strings.TrimSpace(w.Body.String()), status)
			return
		}
		if w.Header().Get("X-Request-Id") == "" {
			t.Errorf("%s: no X-Request-Id", what)
		}
		if (status == http.StatusServiceUnavailable || status == http.StatusConflict || status == http.StatusTooManyRequests) && w.Header().Get("Retry-After") == "" {
			t.Errorf("%s: %d without Retry-After", what, status)
		}
		var body errorBody
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code != code || body.Error.Message == "" {
			t.Errorf("%s: body %q; want an error with code %s", what, w.Body.String(), code)
		}
		res, ok := listed[fmt.Sprint(status)]
		if !ok {
			t.Errorf("%s: answered %d, which the document does not list", what, status)
			return
		}
		res = doc.response(t, res)
		if codes := oaErrorCodes(res.Content["application/json"].Schema); !slices.Contains(codes, code) {
			t.Errorf("%s: code %s; the document allows %v", what, code, codes)
		}
	}
	fill := strings.NewReplacer("{token}", oaToken, "{chat}", "1", "{message}", "1", "{param}", "x")

	for r := range router {
		spec, d := oaRouteSpecs[r], ops[r]
		if d.op.Responses == nil {
			continue // reported by TestOpenAPIDocumentsEveryRoute
		}
		path := fill.Replace(r.path)
		if slices.Contains(spec.statuses, 415) {
			expect(r.String()+" text/plain", send(r.method, path, "text/plain", `{}`), 415, "unsupported_media_type", d.op.Responses)
			expect(r.String()+" malformed", send(r.method, path, "application/json", `{"name":`), 400, "invalid_json", d.op.Responses)
			expect(r.String()+" wrong type", send(r.method, path, "application/json", `{"name":1,"body":1,"app_token":1}`), 400, "invalid_json", d.op.Responses)
			big := `{"name":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
			expect(r.String()+" over 1 MiB", send(r.method, path, "application/json", big), 413, "payload_too_large", d.op.Responses)
		}
		if r.method == http.MethodPost || r.method == http.MethodPatch || r.method == http.MethodDelete {
			// A body every command accepts, so that the key is what fails.
			body := `{"name":"a","body":"b","app_token":"` + oaToken + `","chat_number":1}`
			for _, keys := range [][]string{{""}, {"a b"}, {strings.Repeat("k", 256)}, {"k1", "k2"}} {
				expect(fmt.Sprintf("%s Idempotency-Key %.20q", r, keys), send(r.method, path, "application/json", body, keys...), 400, "invalid_idempotency_key", d.op.Responses)
			}
		}
		for _, p := range spec.probes {
			what := fmt.Sprintf("%s %s %s", r.method, p.path, p.body)
			ct := ""
			if p.body != "" {
				ct = "application/json"
			}
			expect(what, send(r.method, p.path, ct, p.body), p.status, p.code, d.op.Responses)
		}

		// A method the path does not take.
		var other string
		for _, m := range []string{"DELETE", "PUT", "PATCH", "POST"} {
			if _, taken := router[oaRoute{m, r.path}]; !taken {
				other = m
				break
			}
		}
		expect(other+" "+path, send(other, path, "", ""), 405, "method_not_allowed", doc.RouterResponses)
	}
	expect("GET /no/such/route", send("GET", "/no/such/route", "", ""), 404, "not_found", doc.RouterResponses)
	expect("GET with a long query", send("GET", "/applications/"+oaToken+"/chats?x="+strings.Repeat("x", MaxTargetBytes), "", ""), 414, "uri_too_long", doc.RouterResponses)

	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if w := send("GET", path, "", ""); w.Code != 200 {
			t.Errorf("GET %s: %d", path, w.Code)
		}
	}
	w := send("GET", "/openapi.yaml", "", "")
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/yaml") || !bytes.Equal(w.Body.Bytes(), openAPIDocument) {
		t.Errorf("GET /openapi.yaml: %d %q; want 200 application/yaml with the document", w.Code, w.Header().Get("Content-Type"))
	}
}
