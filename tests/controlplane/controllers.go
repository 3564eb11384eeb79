package main

// A few kube-controller-manager controllers, run in this process from
// k8s.io/kubernetes/cmd/kube-controller-manager/app, so that the API behaves as in a cluster
// where it matters to an operator: namespaces finish deleting, ownerReferences are garbage
// collected, every namespace gets its "default" ServiceAccount, aggregated ClusterRoles
// (admin/edit/view) are filled in. Workload controllers are left out: no kubelet runs pods here.

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kcmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
	"k8s.io/kubernetes/cmd/kube-controller-manager/names"
)

// enabledControllers is the --controllers list.
var enabledControllers = []string{
	names.GarbageCollectorController,
	names.NamespaceController,
	names.ServiceAccountController,
	names.ServiceAccountTokenController,
	names.ClusterRoleAggregationController,
	names.RootCACertificatePublisherController,
}

func controllerManagerArgs(p *pki, kubeconfig string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--controllers=" + strings.Join(enabledControllers, ","),
		"--leader-elect=false",
		"--secure-port=0", // no HTTPS endpoint of its own
		"--use-service-account-credentials=false",
		"--service-account-private-key-file=" + p.SAKey,
		"--root-ca-file=" + p.CACert,
		"--kube-api-qps=100",
		"--kube-api-burst=200",
		"--profiling=false",
	}
}

// startControllerManager runs the controllers until ctx is cancelled; done yields Run's result.
func startControllerManager(ctx context.Context, args []string) (<-chan error, error) {
	s, err := kcmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return nil, err
	}
	all, disabled, aliases := kcm.KnownControllers(), kcm.ControllersDisabledByDefault(), kcm.ControllerAliases()
	fss := s.Flags(all, disabled, aliases)
	s.ParsedFlags = &fss
	fs := pflag.NewFlagSet("kube-controller-manager", pflag.ContinueOnError)
	for _, f := range fss.FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("controller-manager flags: %w", err)
	}
	if err := s.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, err
	}
	c, err := s.Config(ctx, all, disabled, aliases)
	if err != nil {
		return nil, fmt.Errorf("controller-manager config: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- kcm.Run(ctx, c.Complete()) }()
	return done, nil
}
