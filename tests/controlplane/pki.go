package main

// The control plane's own PKI: a CA, the apiserver's serving certificate, an admin client
// certificate (group system:masters) and the ServiceAccount token signing key. Everything is
// kept under <data-dir>/pki and reused on restart, so a kubeconfig or a ServiceAccount token
// minted before a restart stays valid after it.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const certValidity = 10 * 365 * 24 * time.Hour

// pki holds the paths of every file the apiserver and the controllers read.
type pki struct {
	Dir           string
	CACert        string
	CAKey         string
	ServingCert   string
	ServingKey    string
	AdminCert     string
	AdminKey      string
	SAKey         string // private key: signs ServiceAccount tokens
	SAPub         string // public key: verifies them
	caCertificate *x509.Certificate
	caSigner      crypto.Signer
}

func newPKI(dir string) *pki {
	p := func(name string) string { return filepath.Join(dir, name) }
	return &pki{
		Dir:         dir,
		CACert:      p("ca.crt"),
		CAKey:       p("ca.key"),
		ServingCert: p("apiserver.crt"),
		ServingKey:  p("apiserver.key"),
		AdminCert:   p("admin.crt"),
		AdminKey:    p("admin.key"),
		SAKey:       p("sa.key"),
		SAPub:       p("sa.pub"),
	}
}

// ensure creates whatever is missing; existing files are kept as they are.
func (p *pki) ensure() error {
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return err
	}
	if err := p.ensureCA(); err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	serving := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{
			"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local",
		},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")},
	}
	if err := p.ensureLeaf(p.ServingCert, p.ServingKey, serving); err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	admin := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kubernetes-admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if err := p.ensureLeaf(p.AdminCert, p.AdminKey, admin); err != nil {
		return fmt.Errorf("admin certificate: %w", err)
	}
	if err := p.ensureSAKey(); err != nil {
		return fmt.Errorf("service-account key: %w", err)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func (p *pki) ensureCA() error {
	if exists(p.CACert) && exists(p.CAKey) {
		cert, err := readCert(p.CACert)
		if err != nil {
			return err
		}
		key, err := readKey(p.CAKey)
		if err != nil {
			return err
		}
		p.caCertificate, p.caSigner = cert, key
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "iap-run-operator local control plane CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	if err := writeKey(p.CAKey, key); err != nil {
		return err
	}
	if err := writePEM(p.CACert, "CERTIFICATE", der, 0o644); err != nil {
		return err
	}
	p.caCertificate, p.caSigner = cert, key
	return nil
}

func (p *pki) ensureLeaf(certPath, keyPath string, tmpl *x509.Certificate) error {
	if exists(certPath) && exists(keyPath) {
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(certValidity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCertificate, key.Public(), p.caSigner)
	if err != nil {
		return err
	}
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	return writePEM(certPath, "CERTIFICATE", der, 0o644)
}

func (p *pki) ensureSAKey() error {
	if exists(p.SAKey) && exists(p.SAPub) {
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return err
	}
	if err := writeKey(p.SAKey, key); err != nil {
		return err
	}
	return writePEM(p.SAPub, "PUBLIC KEY", pub, 0o644)
}

// writeKubeconfig writes a self-contained admin kubeconfig (certificates inlined).
func (p *pki) writeKubeconfig(path, server string) error {
	ca, err := os.ReadFile(p.CACert)
	if err != nil {
		return err
	}
	cert, err := os.ReadFile(p.AdminCert)
	if err != nil {
		return err
	}
	key, err := os.ReadFile(p.AdminKey)
	if err != nil {
		return err
	}
	const name = "iaprun-local"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = name
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	// Write to a temporary file and rename, so a reader never sees half a kubeconfig.
	tmp := path + ".tmp"
	if err := clientcmd.WriteToFile(*cfg, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

func writePEM(path, blockType string, der []byte, mode os.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), mode)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "EC PRIVATE KEY", der, 0o600)
}

func readPEM(path string) (*pem.Block, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	return block, nil
}

func readCert(path string) (*x509.Certificate, error) {
	block, err := readPEM(path)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(block.Bytes)
}

func readKey(path string) (crypto.Signer, error) {
	block, err := readPEM(path)
	if err != nil {
		return nil, err
	}
	if block.Type != "EC PRIVATE KEY" {
		return nil, errors.New(path + ": expected an EC private key")
	}
	return x509.ParseECPrivateKey(block.Bytes)
}
