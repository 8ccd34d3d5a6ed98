package main

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rs/zerolog/log"

	"github.com/zincsearch/zincsearch/pkg/handlers/index"
	"github.com/zincsearch/zincsearch/pkg/handlers/search"
	"github.com/zincsearch/zincsearch/pkg/meta"
	"github.com/zincsearch/zincsearch/pkg/meta/elastic"
	"github.com/zincsearch/zincsearch/pkg/zutils"
)

// setRoutes puts an Elasticsearch-shaped API on r, modelled on ZincSearch's
// own /es/* routes (pkg/routes/routes.go) but at the root, without
// authentication, and with the shims in shims.go where ZincSearch's handler
// would be unusable as an Elasticsearch stand-in.
func setRoutes(r *gin.Engine, verbose bool) {
	r.Use(gin.Recovery(), accessLog(verbose), esProduct)
	r.NoRoute(func(c *gin.Context) {
		esError(c, http.StatusNotFound, "unsupported_operation_exception",
			"zincsearch stand-in: no route for "+c.Request.Method+" "+c.Request.URL.Path)
	})

	// cluster
	info := func(c *gin.Context) { zutils.GinRenderJSON(c, http.StatusOK, elastic.NewESInfo(c)) }
	r.GET("/", info)
	r.HEAD("/", info)
	r.GET("/_license", func(c *gin.Context) { zutils.GinRenderJSON(c, http.StatusOK, elastic.NewESLicense(c)) })
	r.GET("/_xpack", func(c *gin.Context) { zutils.GinRenderJSON(c, http.StatusOK, elastic.NewESXPack(c)) })
	r.GET("/_cluster/health", clusterHealth)
	r.GET("/_cluster/health/:target", clusterHealth)
	r.GET("/healthz", meta.GetHealthz)
	r.GET("/version", meta.GetVersion)

	// search
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		r.Handle(m, "/_search", searchHandler)
		r.Handle(m, "/:target/_search", readAlias, requireIndex, searchHandler)
		r.Handle(m, "/_msearch", search.MultipleSearch)
		r.Handle(m, "/:target/_msearch", readAlias, search.MultipleSearch)
		r.Handle(m, "/_count", count)
		r.Handle(m, "/:target/_count", readAlias, requireIndex, count)
	}
	r.POST("/:target/_delete_by_query", readAlias, requireIndex, writeTracker, deleteByQuery)

	// index templates
	r.GET("/_index_template", index.ListTemplate)
	r.POST("/_index_template", index.CreateTemplate)
	r.PUT("/_index_template/:target", index.CreateTemplate)
	r.GET("/_index_template/:target", index.GetTemplate)
	r.HEAD("/_index_template/:target", index.GetTemplate)
	r.DELETE("/_index_template/:target", index.DeleteTemplate)

	// indices
	r.PUT("/:target", createIndex)
	r.HEAD("/:target", readAlias, existsIndex)
	r.GET("/:target", readAlias, requireIndex, getIndex)
	r.DELETE("/:target", requireIndex, deleteIndex)
	r.GET("/:target/_mapping", readAlias, requireIndex, index.GetESMapping)
	r.PUT("/:target/_mapping", writeAlias, requireIndex, putMapping)
	r.GET("/:target/_settings", readAlias, requireIndex, getSettings)
	r.PUT("/:target/_settings", writeAlias, requireIndex, index.SetSettings)
	r.GET("/_analyze", index.Analyze)
	r.POST("/_analyze", index.Analyze)
	r.GET("/:target/_analyze", readAlias, index.Analyze)
	r.POST("/:target/_analyze", readAlias, index.Analyze)
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		r.Handle(m, "/_refresh", refresh)
		r.Handle(m, "/:target/_refresh", readAlias, requireIndex, refresh)
		r.Handle(m, "/_flush", refresh)
		r.Handle(m, "/:target/_flush", readAlias, requireIndex, refresh)
		r.Handle(m, "/:target/_forcemerge", readAlias, requireIndex, refresh)
	}

	// aliases
	r.POST("/_aliases", updateAliases)
	r.GET("/_alias", getAliases)
	r.GET("/_alias/:alias", getAliases)
	r.HEAD("/_alias/:alias", getAliases)
	r.GET("/_aliases", getAliases)
	r.GET("/:target/_alias", getAliases)
	r.GET("/:target/_alias/:alias", getAliases)
	r.HEAD("/:target/_alias/:alias", getAliases)
	r.GET("/:target/_aliases", getAliases)
	for _, p := range []string{"/:target/_alias/:alias", "/:target/_aliases/:alias"} {
		r.PUT(p, putAlias)
		r.POST(p, putAlias)
		r.DELETE(p, deleteAlias)
	}

	// documents
	r.POST("/_bulk", writeTracker, bulkHandler)
	r.PUT("/_bulk", writeTracker, bulkHandler)
	r.POST("/:target/_bulk", writeAlias, writeTracker, bulkHandler)
	r.PUT("/:target/_bulk", writeAlias, writeTracker, bulkHandler)
	r.POST("/:target/_doc", writeAlias, writeTracker, indexDoc)
	r.PUT("/:target/_doc/:id", writeAlias, writeTracker, indexDoc)
	r.POST("/:target/_doc/:id", writeAlias, writeTracker, indexDoc)
	r.PUT("/:target/_create/:id", writeAlias, writeTracker, indexDoc)
	r.POST("/:target/_create/:id", writeAlias, writeTracker, indexDoc)
	r.POST("/:target/_update/:id", writeAlias, writeTracker, updateDoc)
	r.DELETE("/:target/_doc/:id", writeAlias, requireIndex, writeTracker, deleteDoc)
	r.GET("/:target/_doc/:id", readAlias, requireIndex, getDoc)
	r.HEAD("/:target/_doc/:id", readAlias, requireIndex, getDoc)
	r.GET("/:target/_source/:id", readAlias, requireIndex, getDoc)
}

// esProduct sets the header the Elasticsearch clients check before they
// accept a server ("the client noticed that the server is not Elasticsearch").
func esProduct(c *gin.Context) {
	c.Header("X-Elastic-Product", "Elasticsearch")
	c.Next()
}

// slowRequest is how long a request runs before the log shows it and, at
// most once a minute, every goroutine's stack: what it waits on is what
// makes searches time out under load.
const slowRequest = 5 * time.Second

func accessLog(verbose bool) gin.HandlerFunc {
	var lastDump atomic.Int64
	return func(c *gin.Context) {
		start := time.Now()
		slow := time.AfterFunc(slowRequest, func() {
			log.Warn().Str("method", c.Request.Method).Str("path", c.Request.URL.RequestURI()).
				Msg("request still running after " + slowRequest.String())
			now, last := time.Now().Unix(), lastDump.Load()
			if now-last >= 60 && lastDump.CompareAndSwap(last, now) {
				buf := make([]byte, 1<<20)
				fmt.Fprintf(os.Stderr, "goroutines:\n%s\nend of goroutines\n", buf[:runtime.Stack(buf, true)])
			}
		})
		c.Next()
		slow.Stop()
		status := c.Writer.Status()
		took := time.Since(start)
		if !verbose && status < http.StatusInternalServerError && took < slowRequest {
			return
		}
		log.Info().Str("method", c.Request.Method).Str("path", c.Request.URL.RequestURI()).
			Int("status", status).Dur("took", took).Msg("request")
	}
}

func clusterHealth(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{
		"cluster_name": "zincsearch", "status": "green", "timed_out": false,
		"number_of_nodes": 1, "number_of_data_nodes": 1,
		"active_primary_shards": 0, "active_shards": 0, "relocating_shards": 0,
		"initializing_shards": 0, "unassigned_shards": 0,
	})
}
