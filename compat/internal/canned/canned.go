// Package canned is a language model for agno-golang that answers from a
// rule instead of a network service, and records what it was sent.
//
// It implements models.AgnoModelInterface, so a real agent.Agent or team.Team
// runs with it unchanged. The answer to a call depends only on the last user
// message of that call: "canned: " and that message, cut to 80 runes. The
// same conversation therefore stores the same text in every run.
package canned

import (
	"context"
	"encoding/json"
	"os"
	"sync"

	"github.com/devalexandre/agno-golang/agno/models"
)

// Call is one request the model received and the answer it gave.
type Call struct {
	Messages []Message `json:"messages"`
	Reply    string    `json:"reply"`
}

// Message is a message as the model received it.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Model answers every call with Reply(messages). It is safe for concurrent use.
type Model struct {
	mu    sync.Mutex
	calls []Call
}

// New returns a model that has received nothing yet.
func New() *Model { return &Model{} }

// Reply is the answer to a call with these messages.
func Reply(messages []models.Message) string {
	last := ""
	for _, m := range messages {
		if m.Role == models.TypeUserRole {
			last = m.Content
		}
	}
	if r := []rune(last); len(r) > 80 {
		last = string(r[:80])
	}
	return "canned: " + last
}

func (m *Model) record(messages []models.Message) *models.MessageResponse {
	call := Call{Reply: Reply(messages)}
	for _, msg := range messages {
		call.Messages = append(call.Messages, Message{Role: string(msg.Role), Content: msg.Content})
	}
	m.mu.Lock()
	m.calls = append(m.calls, call)
	m.mu.Unlock()
	return &models.MessageResponse{Model: m.GetID(), Role: models.TypeAssistantRole, Content: call.Reply}
}

// Calls returns every call received so far, in order.
func (m *Model) Calls() []Call {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Call(nil), m.calls...)
}

// WriteLog writes Calls() to path as a JSON list.
func (m *Model) WriteLog(path string) error {
	b, err := json.Marshal(m.Calls())
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// Invoke answers with the canned reply.
func (m *Model) Invoke(_ context.Context, messages []models.Message, _ ...models.Option) (*models.MessageResponse, error) {
	return m.record(messages), nil
}

// AInvoke sends the canned reply on the first channel.
func (m *Model) AInvoke(_ context.Context, messages []models.Message, _ ...models.Option) (<-chan *models.MessageResponse, <-chan error) {
	out, errs := make(chan *models.MessageResponse, 1), make(chan error)
	out <- m.record(messages)
	close(out)
	close(errs)
	return out, errs
}

// InvokeStream passes the canned reply to the streaming function in one chunk.
func (m *Model) InvokeStream(ctx context.Context, messages []models.Message, options ...models.Option) error {
	resp := m.record(messages)
	opts := &models.CallOptions{}
	for _, o := range options {
		o(opts)
	}
	if opts.StreamingFunc != nil {
		return opts.StreamingFunc(ctx, []byte(resp.Content))
	}
	return nil
}

// AInvokeStream is AInvoke.
func (m *Model) AInvokeStream(ctx context.Context, messages []models.Message, options ...models.Option) (<-chan *models.MessageResponse, <-chan error) {
	return m.AInvoke(ctx, messages, options...)
}

// GetID names the model.
func (m *Model) GetID() string { return "canned" }
