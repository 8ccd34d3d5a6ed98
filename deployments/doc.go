// Package deployments holds the container and Kubernetes deployment files of the chat system and the tests that keep them consistent with the code.
package deployments
