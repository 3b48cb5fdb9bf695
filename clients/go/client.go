// Package verifyclient is a Go client for cognito-verify's gRPC service
// cognito.verify.v1.UserAttributeVerificationService.
//
// The stubs are generated (package verifyv1, in gen/cognito/verify/v1); this
// layer adds what every caller would otherwise write by hand:
//
//   - Dial: a connection, plaintext or TLS/mTLS from PEM files;
//   - Client: a deadline on every call (DefaultTimeout unless the context
//     has one) and only the retries that are safe, waiting the delay the
//     service advised and never past the deadline;
//   - Error: every failed call, with the rich status decoded (ErrorInfo into
//     the ErrorReason enum, RetryInfo, BadRequest, QuotaFailure).
//
// Neither the access token nor the code is part of anything this package
// returns or prints, and it logs nothing.
package verifyclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	verifyv1 "cognito-verify.invalid/clients/go/gen/cognito/verify/v1"
)

// DefaultTimeout is the deadline of a call, retries included, when its
// context has none.
const DefaultTimeout = 10 * time.Second

// DefaultMaxAttempts is the number of attempts of a call, the first
// included, where a retry is safe.
const DefaultMaxAttempts = 3

// Options of Dial. The zero value is TLS trusting the system's roots.
type Options struct {
	// Plaintext: no TLS, for a local `cognito-verify dev`. Takes no files.
	Plaintext bool
	// CAFile (PEM) is trusted instead of the system's roots.
	CAFile string
	// CertFile and KeyFile (PEM), both or neither: the client certificate
	// of mTLS, which names the caller.
	CertFile, KeyFile string
	// ServerName overrides the name the server's certificate must carry
	// (by default, the address's host).
	ServerName string
	// DialOptions are passed on to grpc.Dial after this package's own.
	DialOptions []grpc.DialOption
}

// Dial returns a connection to the service at addr (host:port). It does not
// wait for the connection: a call that cannot reach the service fails with
// an *Error of code Unavailable. Its own errors are configuration errors (a
// file unreadable, a certificate without its key).
func Dial(addr string, opts Options) (*grpc.ClientConn, error) {
	var creds grpc.DialOption
	switch {
	case opts.Plaintext:
		if opts.CAFile != "" || opts.CertFile != "" || opts.KeyFile != "" || opts.ServerName != "" {
			return nil, errors.New("verifyclient: plaintext takes no certificates and no server name")
		}
		creds = grpc.WithInsecure()
	default:
		cfg, err := tlsConfig(opts)
		if err != nil {
			return nil, err
		}
		creds = grpc.WithTransportCredentials(credentials.NewTLS(cfg))
	}
	return grpc.Dial(addr, append([]grpc.DialOption{creds}, opts.DialOptions...)...)
}

func tlsConfig(opts Options) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: opts.ServerName}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("verifyclient: CA file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("verifyclient: CA file %s: no PEM certificate", opts.CAFile)
		}
	}
	if (opts.CertFile == "") != (opts.KeyFile == "") {
		return nil, errors.New("verifyclient: mTLS needs both CertFile and KeyFile")
	}
	if opts.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(opts.CertFile, opts.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("verifyclient: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// FieldViolation is a request field the service refused (google.rpc.BadRequest).
type FieldViolation struct {
	Field       string
	Description string
}

// QuotaViolation is a limit that was spent (google.rpc.QuotaFailure).
type QuotaViolation struct {
	Subject     string
	Description string
}

// Error is every failed call: the gRPC status and its decoded details. It
// holds no access token and no code. errors.As(err, &e) finds it, and
// status.Code(err) and status.Convert(err) see the status it came from.
type Error struct {
	// Code is the gRPC status code.
	Code codes.Code
	// Message is the status message.
	Message string
	// Reason is ErrorInfo.reason as the enum: ERROR_REASON_UNSPECIFIED when
	// the service sent a reason this version does not know (an unrecognised
	// Cognito error: see error_reason.proto) or none (a transport error).
	Reason verifyv1.ErrorReason
	// ReasonName is ErrorInfo.reason as sent, kept for unknown reasons.
	ReasonName string
	// Domain is ErrorInfo.domain: cognito-verify or cognito-idp.amazonaws.com.
	Domain string
	// Metadata is ErrorInfo.metadata (awsErrorCode, httpStatus, caller...).
	Metadata map[string]string
	// RetryAfter is RetryInfo.retry_delay. HasRetryAfter is true only when
	// the status carried a RetryInfo: the service sends one only where a
	// retry is safe.
	RetryAfter    time.Duration
	HasRetryAfter bool
	// FieldViolations are BadRequest's, QuotaViolations QuotaFailure's.
	FieldViolations []FieldViolation
	QuotaViolations []QuotaViolation

	status *status.Status
}

// FromError decodes the error a call of the generated stubs returned (the
// status and its grpc-status-details-bin). An *Error is returned as it is;
// an error that is no status becomes one of code Unknown.
func FromError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return FromStatus(status.Convert(err))
}

// FromStatus decodes a status and its details.
func FromStatus(st *status.Status) *Error {
	e := &Error{Code: st.Code(), Message: st.Message(), status: st}
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			e.ReasonName, e.Domain = d.GetReason(), d.GetDomain()
			e.Reason = verifyv1.ErrorReason(verifyv1.ErrorReason_value[d.GetReason()])
			for k, v := range d.GetMetadata() {
				if e.Metadata == nil {
					e.Metadata = map[string]string{}
				}
				e.Metadata[k] = v
			}
		case *errdetails.RetryInfo:
			e.HasRetryAfter = true
			if wait := d.GetRetryDelay().AsDuration(); wait > 0 {
				e.RetryAfter = wait
			}
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				e.FieldViolations = append(e.FieldViolations, FieldViolation{v.GetField(), v.GetDescription()})
			}
		case *errdetails.QuotaFailure:
			for _, v := range d.GetViolations() {
				e.QuotaViolations = append(e.QuotaViolations, QuotaViolation{v.GetSubject(), v.GetDescription()})
			}
		}
		// A detail that does not decode (an error value) is ignored.
	}
	return e
}

// CodeName is the code's canonical name, as the other clients print it
// (RESOURCE_EXHAUSTED; Code.String() gives ResourceExhausted).
func (e *Error) CodeName() string {
	if int(e.Code) < len(codeNames) {
		return codeNames[e.Code]
	}
	return e.Code.String()
}

var codeNames = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}

// Error is "CODE: message [REASON] (retry after 1.500 s)", the last two when
// the status has them.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", e.CodeName(), e.Message)
	if e.ReasonName != "" {
		fmt.Fprintf(&b, " [%s]", e.ReasonName)
	}
	if e.HasRetryAfter {
		fmt.Fprintf(&b, " (retry after %.3f s)", e.RetryAfter.Seconds())
	}
	return b.String()
}

// GRPCStatus is the status the error was decoded from, for status.Code and
// status.Convert.
func (e *Error) GRPCStatus() *status.Status {
	if e.status == nil {
		return status.New(e.Code, e.Message)
	}
	return e.status
}

// verifyRetryable: the reasons a VerifyUserAttribute is retried on, each
// decided by the service before it calls Cognito and sent with a RetryInfo
// (docs/errors.md): nothing was done, no code was consumed. The same list
// as the Python and Rust clients'.
var verifyRetryable = map[verifyv1.ErrorReason]bool{
	verifyv1.ErrorReason_SIGNING_KEYS_UNAVAILABLE: true,
	verifyv1.ErrorReason_LIMITS_UNAVAILABLE:       true,
	verifyv1.ErrorReason_RATE_LIMITED:             true,
	verifyv1.ErrorReason_OVERLOADED:               true,
	verifyv1.ErrorReason_USER_VERIFY_QUOTA:        true,
}

// Client calls the three RPCs with a deadline and only the retries that are
// safe. A call's deadline is its context's, or DefaultTimeout (WithTimeout)
// from the call when the context has none; it covers the retries. A retry
// waits the delay the status's RetryInfo advises and is not made when that
// wait would reach the deadline. A send is retried only with a request ID
// (the service then returns the first answer instead of sending again); a
// verify only on a RetryInfo status the service sends before it calls
// Cognito; a status read (which consumes nothing) on any status with a
// RetryInfo. Every failure is an *Error. A Client is safe for concurrent use.
type Client struct {
	stub        verifyv1.UserAttributeVerificationServiceClient
	timeout     time.Duration
	maxAttempts int
}

// ClientOption configures New.
type ClientOption func(*Client)

// WithTimeout sets the deadline of calls whose context has none.
func WithTimeout(d time.Duration) ClientOption { return func(c *Client) { c.timeout = d } }

// WithMaxAttempts sets the attempts of a call where a retry is safe, the
// first included (1: no retries).
func WithMaxAttempts(n int) ClientOption { return func(c *Client) { c.maxAttempts = n } }

// New returns a client over cc (a *grpc.ClientConn from Dial).
func New(cc grpc.ClientConnInterface, opts ...ClientOption) *Client {
	c := &Client{
		stub:        verifyv1.NewUserAttributeVerificationServiceClient(cc),
		timeout:     DefaultTimeout,
		maxAttempts: DefaultMaxAttempts,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Stub is the generated client, for what this layer does not cover.
func (c *Client) Stub() verifyv1.UserAttributeVerificationServiceClient { return c.stub }

// SendOption adds to a GetUserAttributeVerificationCode request.
type SendOption func(*verifyv1.GetUserAttributeVerificationCodeRequest)

// WithRequestID names the user intent (a UUID): a repeat within the
// service's idempotency window returns the first answer and sends nothing,
// which is what lets the client retry the send.
func WithRequestID(id string) SendOption {
	return func(r *verifyv1.GetUserAttributeVerificationCodeRequest) { r.RequestId = id }
}

// WithClientMetadata sets the ClientMetadata for the pool's Lambda triggers.
func WithClientMetadata(m map[string]string) SendOption {
	return func(r *verifyv1.GetUserAttributeVerificationCodeRequest) {
		r.ClientMetadata = make(map[string]string, len(m))
		for k, v := range m {
			r.ClientMetadata[k] = v
		}
	}
}

// GetUserAttributeVerificationCode sends a code for attribute (email or
// phone_number) to the user whose access token this is.
func (c *Client) GetUserAttributeVerificationCode(ctx context.Context, accessToken, attribute string, opts ...SendOption) (*verifyv1.GetUserAttributeVerificationCodeResponse, error) {
	req := &verifyv1.GetUserAttributeVerificationCodeRequest{AccessToken: accessToken, AttributeName: attribute}
	for _, o := range opts {
		o(req)
	}
	withID := req.RequestId != ""
	var resp *verifyv1.GetUserAttributeVerificationCodeResponse
	err := c.call(ctx, func(e *Error) bool { return withID && e.HasRetryAfter }, func(ctx context.Context) (err error) {
		resp, err = c.stub.GetUserAttributeVerificationCode(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// VerifyUserAttribute submits the code the user received for attribute.
func (c *Client) VerifyUserAttribute(ctx context.Context, accessToken, attribute, code string) (*verifyv1.VerifyUserAttributeResponse, error) {
	req := &verifyv1.VerifyUserAttributeRequest{AccessToken: accessToken, AttributeName: attribute, Code: code}
	var resp *verifyv1.VerifyUserAttributeResponse
	err := c.call(ctx, func(e *Error) bool { return e.HasRetryAfter && verifyRetryable[e.Reason] }, func(ctx context.Context) (err error) {
		resp, err = c.stub.VerifyUserAttribute(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// GetVerificationStatus tells where the user whose access token this is
// stands, for email and phone_number: whether the user has each (masked),
// whether it is verified, when the next code could be sent and what would
// refuse it (NextSendIn, SendBlockedBy); the codes and attempts left this
// hour. It reads only (no limit is consumed), so any status with a
// RetryInfo is retried.
func (c *Client) GetVerificationStatus(ctx context.Context, accessToken string) (*verifyv1.GetVerificationStatusResponse, error) {
	req := &verifyv1.GetVerificationStatusRequest{AccessToken: accessToken}
	var resp *verifyv1.GetVerificationStatusResponse
	err := c.call(ctx, func(e *Error) bool { return e.HasRetryAfter }, func(ctx context.Context) (err error) {
		resp, err = c.stub.GetVerificationStatus(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// call makes attempts until one succeeds, the error is not retryable, the
// attempts are spent, or the advised wait would reach the deadline. A
// failure is always an *Error.
func (c *Client) call(ctx context.Context, retryable func(*Error) bool, attempt func(context.Context) error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return contextError(err)
		}
		err := attempt(ctx)
		if err == nil {
			return nil
		}
		e := FromError(err)
		if n >= c.maxAttempts || !retryable(e) || !time.Now().Add(e.RetryAfter).Before(deadline) {
			return e
		}
		timer := time.NewTimer(e.RetryAfter)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return contextError(ctx.Err())
		}
	}
}

// contextError: the call's context ended (its deadline, or the caller
// cancelled it) before an attempt could be made.
func contextError(err error) *Error {
	if errors.Is(err, context.DeadlineExceeded) {
		return FromStatus(status.New(codes.DeadlineExceeded, "the call's deadline passed (client side)"))
	}
	return FromStatus(status.New(codes.Canceled, "the call was cancelled (client side)"))
}
