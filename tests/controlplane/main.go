// Command controlplane runs a real Kubernetes control plane in one process, for tests and the
// demo: an embedded etcd, the real kube-apiserver (RBAC on, TokenRequest on) and the
// kube-controller-manager controllers an operator relies on (garbage collector, namespace
// lifecycle, ServiceAccounts). Everything listens on 127.0.0.1 only.
//
// Once /readyz answers ok it prints exactly one JSON line on stdout, e.g.
//
//	{"kubeconfig":"/tmp/x/admin.kubeconfig","url":"https://127.0.0.1:41234",...}
//
// and nothing else goes to stdout; logs go to stderr. SIGTERM or SIGINT (or stdin reaching EOF
// with --exit-on-stdin-close) stops it cleanly: apiserver, controllers, then etcd.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/component-base/version"
	"k8s.io/klog/v2"
)

type options struct {
	dataDir           string
	port              int
	kubeconfig        string
	controllerManager bool
	exitOnStdinClose  bool
	readyTimeout      time.Duration
}

// readyLine is the single line printed on stdout once the control plane serves.
type readyLine struct {
	Kubeconfig        string `json:"kubeconfig"`
	URL               string `json:"url"`
	DataDir           string `json:"data_dir"`
	CAFile            string `json:"ca_file"`
	PID               int    `json:"pid"`
	Version           string `json:"version"`
	ControllerManager bool   `json:"controller_manager"`
	Issuer            string `json:"service_account_issuer"`
}

func main() {
	var o options
	fs := flag.NewFlagSet("controlplane", flag.ExitOnError)
	fs.StringVar(&o.dataDir, "data-dir", "", "directory for etcd data, PKI and kubeconfig; reused on restart (default: a temporary directory removed on exit)")
	fs.IntVar(&o.port, "port", 0, "apiserver port on 127.0.0.1 (0 = a free port)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "where to write the admin kubeconfig (default: <data-dir>/admin.kubeconfig)")
	fs.BoolVar(&o.controllerManager, "controller-manager", true, "also run the garbage-collector, namespace and serviceaccount controllers")
	fs.BoolVar(&o.exitOnStdinClose, "exit-on-stdin-close", false, "stop when stdin reaches EOF (so a parent that dies takes the control plane with it)")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", 3*time.Minute, "give up if not ready within this time")
	_ = fs.Parse(os.Args[1:])

	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "controlplane:", err)
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

func run(o options) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if o.exitOnStdinClose {
		ctx = cancelOnStdinEOF(ctx)
	}

	if o.dataDir == "" {
		dir, err := os.MkdirTemp("", "controlplane-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.dataDir = dir
	}
	dataDir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return err
	}
	if o.kubeconfig == "" {
		o.kubeconfig = filepath.Join(dataDir, "admin.kubeconfig")
	}
	kubeconfig, err := filepath.Abs(o.kubeconfig)
	if err != nil {
		return err
	}

	p := newPKI(filepath.Join(dataDir, "pki"))
	if err := p.ensure(); err != nil {
		return err
	}

	etcd, etcdURL, err := startEtcd(filepath.Join(dataDir, "etcd"))
	if err != nil {
		return err
	}
	defer etcd.Close()

	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", o.port))
	if err != nil {
		return fmt.Errorf("apiserver listener: %w", err)
	}
	port := listener.Addr().(*net.TCPAddr).Port
	url := fmt.Sprintf("https://127.0.0.1:%d", port)
	if err := p.writeKubeconfig(kubeconfig, url); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}

	// Everything below stops when serveCtx is cancelled: by a signal, or when a component fails.
	serveCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	apiserver, err := startAPIServer(serveCtx, listener, apiserverArgs(p, etcdURL, port))
	if err != nil {
		return err
	}
	waitStopped := func(what string, done <-chan error) error {
		select {
		case err := <-done:
			return err
		case <-time.After(60 * time.Second):
			return fmt.Errorf("%s did not stop within 60s", what)
		}
	}

	restConfig, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	readyCtx, readyCancel := context.WithTimeout(serveCtx, o.readyTimeout)
	defer readyCancel()
	if err := waitAPIServerReady(readyCtx, client, apiserver.done); err != nil {
		cancel()
		return errors.Join(err, waitStopped("apiserver", apiserver.done))
	}

	var kcmDone <-chan error
	if o.controllerManager {
		kcmDone, err = startControllerManager(serveCtx, controllerManagerArgs(p, kubeconfig))
		if err != nil {
			cancel()
			return errors.Join(err, waitStopped("apiserver", apiserver.done))
		}
		// The serviceaccount controller creating default/default shows the controllers run.
		if err := waitDefaultServiceAccount(readyCtx, client, kcmDone); err != nil {
			cancel()
			return errors.Join(err, waitStopped("apiserver", apiserver.done))
		}
	}

	line, err := json.Marshal(readyLine{
		Kubeconfig:        kubeconfig,
		URL:               url,
		DataDir:           dataDir,
		CAFile:            p.CACert,
		PID:               os.Getpid(),
		Version:           version.Get().GitVersion,
		ControllerManager: o.controllerManager,
		Issuer:            ServiceAccountIssuer,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stdout, string(line))

	// Serve until asked to stop, or until a component gives up.
	var runErr error
	select {
	case <-ctx.Done():
		klog.Info("controlplane: stopping")
	case err := <-apiserver.done:
		runErr = fmt.Errorf("apiserver stopped: %w", err)
		apiserver.done = closedWith(err)
	case err := <-kcmDone:
		runErr = fmt.Errorf("controller-manager stopped: %w", err)
		kcmDone = closedWith(err)
	}
	cancel()
	if kcmDone != nil {
		if err := waitStopped("controller-manager", kcmDone); err != nil && !errors.Is(err, context.Canceled) {
			klog.ErrorS(err, "controller-manager shutdown")
		}
	}
	if err := waitStopped("apiserver", apiserver.done); err != nil {
		runErr = errors.Join(runErr, err)
	}
	return runErr
}

// closedWith returns a channel that yields err once, for a result already received.
func closedWith(err error) <-chan error {
	ch := make(chan error, 1)
	ch <- err
	return ch
}

func cancelOnStdinEOF(parent context.Context) context.Context {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		klog.Info("controlplane: stdin closed")
		cancel()
	}()
	return ctx
}

// poll calls check every interval until it reports done, fails, or ctx ends.
func poll(ctx context.Context, interval time.Duration, failed <-chan error, check func() (bool, error)) error {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		ok, err := check()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", ctx.Err())
		case err := <-failed:
			return fmt.Errorf("stopped before ready: %w", err)
		case <-ticker.C:
		}
	}
}

func waitAPIServerReady(ctx context.Context, client kubernetes.Interface, failed <-chan error) error {
	rc := client.Discovery().RESTClient()
	if err := poll(ctx, 100*time.Millisecond, failed, func() (bool, error) {
		status := 0
		rc.Get().AbsPath("/readyz").Do(ctx).StatusCode(&status)
		return status == 200, nil
	}); err != nil {
		return fmt.Errorf("apiserver /readyz: %w", err)
	}
	return poll(ctx, 100*time.Millisecond, failed, func() (bool, error) {
		_, err := client.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{})
		return err == nil, nil
	})
}

func waitDefaultServiceAccount(ctx context.Context, client kubernetes.Interface, failed <-chan error) error {
	err := poll(ctx, 100*time.Millisecond, failed, func() (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			klog.V(2).InfoS("waiting for the default ServiceAccount", "err", err)
		}
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("controller-manager: default ServiceAccount: %w", err)
	}
	return nil
}

func init() {
	// The loopback clients should not print server warnings on stdout/stderr noise.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
}
