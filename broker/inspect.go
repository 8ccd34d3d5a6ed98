package broker

import (
	"context"
	"errors"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Shape is what a queue was found to be.
type Shape int

const (
	ShapeMissing   Shape = iota // no such queue
	ShapeCurrent                // as this release declares it
	ShapeUnbounded              // a quorum store queue of a release before the length bound
	ShapeClassic                // a durable classic queue of a release before quorum queues
	ShapeOther                  // a queue with other arguments (another length bound, say)
)

// String names a shape in words.
func (s Shape) String() string {
	switch s {
	case ShapeMissing:
		return "missing"
	case ShapeCurrent:
		return "current"
	case ShapeUnbounded:
		return "quorum queue without a length bound"
	case ShapeClassic:
		return "classic queue"
	}
	return "queue with other arguments"
}

// InspectQueue finds out what shape queue has, by declaring it with the
// arguments of each release in turn (a declare with other arguments than
// the queue's is refused and changes nothing).
func InspectQueue(conn *amqp.Connection, names Names, queue string) (Shape, error) {
	found, err := inspectQueue(conn, names, queue)
	return found.Shape, err
}

// QueueFound is what the broker holds of a queue of the topology.
type QueueFound struct {
	Name  string
	Shape Shape
	// Bound is the most bytes the queue holds waiting, as this release
	// declares it; 0 for none, or for a queue of another shape.
	Bound     int64
	Messages  int // ready for delivery
	Consumers int
}

// inspectQueue reads a queue's depth and consumers with a passive declare,
// which tells nothing of its arguments, and then its shape (InspectQueue).
// The broker's errors are returned as they are: they name what it refused.
func inspectQueue(conn *amqp.Connection, names Names, queue string) (QueueFound, error) {
	found := QueueFound{Name: queue}
	var q amqp.Queue
	err := onChannel(conn, func(ch *amqp.Channel) (err error) {
		q, err = ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		return err
	})
	if isCode(err, amqp.NotFound) {
		return found, nil
	} else if err != nil {
		return found, err
	}
	found.Messages, found.Consumers = q.Messages, q.Consumers
	current := names
	current.Classic, current.Unbounded, current.Other = nil, nil, nil
	unbounded := current
	unbounded.Unbounded = map[string]bool{queue: true}
	tries := []struct {
		shape Shape
		args  amqp.Table
		valid bool
	}{
		{ShapeCurrent, current.QueueArgs(queue), true},
		{ShapeUnbounded, unbounded.QueueArgs(queue), names.isStore(queue) && names.QueueBound > 0},
		{ShapeClassic, nil, true},
	}
	for _, try := range tries {
		if !try.valid {
			continue
		}
		err := onChannel(conn, func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare(queue, true, false, false, false, try.args)
			return err
		})
		if err == nil {
			found.Shape = try.shape
			if bound, ok := try.args["x-max-length-bytes"].(int64); ok && try.shape == ShapeCurrent {
				found.Bound = bound
			}
			return found, nil
		}
		if !IsPreconditionFailed(err) {
			return found, err
		}
	}
	found.Shape = ShapeOther
	return found, nil
}

// ExchangeFound is what the broker holds of the namespace's exchange.
type ExchangeFound struct {
	Exists bool
	// Differs is the broker's refusal of the exchange declared as the
	// processes declare it (PRECONDITION_FAILED names the difference);
	// empty when it matches.
	Differs string
}

// Inspector looks at a namespace's topology on the broker, over a
// connection of its own, and reports what it finds against what
// DeclareTopology declares. It changes nothing: a declare that matches what
// exists is a no-op, and one that does not is refused.
type Inspector struct {
	conn *amqp.Connection
}

// Inspect connects to the first node of amqpURLs that answers (Dial).
func Inspect(ctx context.Context, amqpURLs, name string) (*Inspector, error) {
	conn, err := dialNodes(ctx, amqpURLs, name)
	if err != nil {
		return nil, err
	}
	return &Inspector{conn: conn}, nil
}

// Server is the product and version the broker announced.
func (in *Inspector) Server() (product, version string) {
	product, _ = in.conn.Properties["product"].(string)
	version, _ = in.conn.Properties["version"].(string)
	return product, version
}

// Exchange reports whether the exchange exists and whether it is declared
// as the processes declare it. A passive declare tells only whether it
// exists; declaring it again tells whether its properties match.
func (in *Inspector) Exchange(names Names) (ExchangeFound, error) {
	err := onChannel(in.conn, func(ch *amqp.Channel) error {
		return ch.ExchangeDeclarePassive(names.Exchange, "topic", true, false, false, false, nil)
	})
	if isCode(err, amqp.NotFound) {
		return ExchangeFound{}, nil
	} else if err != nil {
		return ExchangeFound{}, err
	}
	err = onChannel(in.conn, func(ch *amqp.Channel) error { return declareExchange(ch, names) })
	if IsPreconditionFailed(err) {
		return ExchangeFound{Exists: true, Differs: err.Error()}, nil
	} else if err != nil {
		return ExchangeFound{}, err
	}
	return ExchangeFound{Exists: true}, nil
}

// Queue reports a queue of the topology (one of names.Queues): its shape
// against the arguments DeclareTopology declares it with, its depth and
// its consumers; ShapeMissing when there is no such queue.
func (in *Inspector) Queue(names Names, queue string) (QueueFound, error) {
	return inspectQueue(in.conn, names, queue)
}

// Close closes the connection, waiting a second at most.
func (in *Inspector) Close() error {
	return in.conn.CloseDeadline(time.Now().Add(time.Second))
}

// Refusal is why a broker refused a connection.
type Refusal int

const (
	NotRefused   Refusal = iota // not refused (unreachable, or another failure)
	RefusedVhost                // the vhost does not exist, or the user may not use it
	RefusedLogin                // the user or the password is wrong
)

// RefusalOf tells why a broker refused a connection, from Inspect's or
// Dial's error.
func RefusalOf(err error) Refusal {
	switch {
	case errors.Is(err, amqp.ErrVhost) || isCode(err, amqp.NotAllowed):
		return RefusedVhost
	case isCode(err, amqp.AccessRefused):
		return RefusedLogin
	}
	return NotRefused
}

// isCode reports a channel or connection exception with the reply code.
func isCode(err error, code int) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Code == code
}
