"""Diagnosis of the small classifier's fit and generalisation, in one process (no fairseq
trainer, so a setting costs about a minute on 2 cores): the plugin's SupmamClassifier (tiny
2 x 192 encoder, 128 frames) trained with AdamW (no decay on 1-D parameters), linear warm-up and
cosine decay, on the precomputed fbank of data/demo's train split; reports accuracy on the
training clips (eval mode) and on the held-out-speaker VALID split; the test split is read only
with "test": true, for a setting already chosen on valid.

    .venv/bin/python scripts/finetune_diagnosis.py '{"lr": 1e-3}'
    .venv/bin/python scripts/finetune_diagnosis.py '{"lr": 1e-3, "init": "pretrain/checkpoint_last.pt"}'

Keys: lr, steps (1200), norm ("audioset" | "dataset" statistics), tm / fm (structured patch
dropping), dp (drop path), wd (0.05), bs (16), seed, warm (120), st / sf_ (SpecAugment widths),
roll (random time roll of +-rollmax frames, rollmax 20), fshift (random shift of the mel axis by
+-fshift bins, edge repeated), mix (mixup alpha), init (a checkpoint's encoder),
pad ("zero": AudioMAE's zero log-mel padding; "mean": padded frames at the normalisation mean),
gain (random level change of +-gain dB), fwarp (random mel-axis warp by a factor 1 +- fwarp).
Findings are recorded in RESULTS.md. (Layer-wise lr decay needs fairseq's composite optimizer and
is not modelled here: use scripts/finetune_study.py for it.)
"""
import sys, os, time, numpy as np, torch, soundfile as sf, json
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from omegaconf import OmegaConf
from supmam_plugin.data.manifest import read_manifest
from supmam_plugin.data.fbank import kaldi_fbank, pad_or_crop_frames
from supmam_plugin.models.classifier import SupmamClassifier, SupmamClassifierConfig
def load(split):
    m=read_manifest(os.path.join(REPO, "data/demo", f"{split}.tsv"))
    F=[pad_or_crop_frames(kaldi_fbank(torch.from_numpy(sf.read(m.audio_path(i),dtype="float32")[0])),128) for i in range(len(m))]
    classes=[l.split()[0] for l in open(os.path.join(REPO, "data/demo/dict.label.txt"))]
    y=torch.tensor([classes.index(l.strip()) for l in open(os.path.join(REPO, "data/demo", f"{split}.label"))])
    nvalid = torch.tensor([min(128, 1+(len(sf.read(m.audio_path(i))[0])-400)//160) for i in range(len(m))])
    return torch.stack(F), y, nvalid
Ftr,ytr,ntr=load("train"); Fva,yva,nva=load("valid")
def run(lr=2.5e-4, steps=1200, norm="audioset", ld=1.0, tm=0.0, fm=0.0, dp=0.0, wd=0.05, bs=16, seed=1, warm=120, pad="zero", st=0, sf_=0, roll=False, mix=0.0, init="", test=False, fshift=0, rollmax=20, gain=0.0, fwarp=0.0):
    torch.manual_seed(seed)
    if norm=="audioset": mu,sd=-4.2677393,4.5689974
    else: mu,sd=Ftr.mean().item(), Ftr.std().item()
    def prep(F,n):
        X=(F-mu)/(2*sd)
        mask=(torch.arange(128)[None,:]<n[:,None]).float()[...,None]
        if pad=="zero":  # AudioMAE: the log-mel is padded with 0, then normalised
            X=((F*mask)-mu)/(2*sd)
        elif pad=="mean":  # padded frames at the normalisation mean: 0 after normalising
            X=((F*mask+mu*(1-mask))-mu)/(2*sd)
        return X
    def valid_frames(n):
        return (torch.arange(128)[None,:]<n[:,None]).float()[...,None]
    Xtr,Xva=prep(Ftr,ntr),prep(Fva,nva)
    cfg=SupmamClassifierConfig(encoder_layers=2,encoder_embed_dim=192,encoder_heads=3,input_frames=128,time_mask_ratio=tm,freq_mask_ratio=fm,drop_path=dp,layer_decay=ld,specaug_time=st,specaug_freq=sf_,mixup_alpha=mix)
    if init: cfg.pretrained=init
    model=SupmamClassifier(OmegaConf.structured(cfg),10)
    dec=[p for p in model.parameters() if p.dim()>1]; nod=[p for p in model.parameters() if p.dim()<=1]
    opt=torch.optim.AdamW([{"params":dec},{"params":nod,"weight_decay":0}],lr=lr,weight_decay=wd)
    sched=torch.optim.lr_scheduler.LambdaLR(opt,lambda s: min(1,(s+1)/warm)*0.5*(1+np.cos(np.pi*min(s,steps)/steps)))
    g=torch.Generator().manual_seed(seed)
    for s in range(steps):
        idx=torch.randint(0,len(Xtr),(bs,),generator=g)
        xb=Xtr[idx]
        if roll:
            shifts=torch.randint(-rollmax,rollmax+1,(bs,),generator=g)
            xb=torch.stack([torch.roll(x,int(k),0) for x,k in zip(xb,shifts)])
        if fshift:  # shift the mel axis by +-fshift bins, edge bins repeated (a crude speaker change)
            fs=torch.randint(-fshift,fshift+1,(bs,1),generator=g)
            src=(torch.arange(xb.size(2))[None,:]-fs).clamp(0,xb.size(2)-1)
            xb=torch.gather(xb,2,src[:,None,:].expand(-1,xb.size(1),-1))
        if gain:  # random level change of +-gain dB: a constant on the log-mel (padding stays 0 -> its own value)
            db=(torch.rand(bs,1,1,generator=g)*2-1)*gain
            xb=xb+db*np.log(10)/10/(2*sd)*valid_frames(ntr[idx])
        if fwarp:  # warp the mel axis by a random factor in [1-fwarp, 1+fwarp] (VTLP-like), linear interpolation
            a=1+(torch.rand(bs,1,generator=g)*2-1)*fwarp
            src=(torch.arange(xb.size(2))[None,:]*a).clamp(0,xb.size(2)-1)
            lo=src.floor().long(); hi=(lo+1).clamp(max=xb.size(2)-1); w=(src-lo)[:,None,:]
            xb=torch.gather(xb,2,lo[:,None,:].expand(-1,xb.size(1),-1))*(1-w)+torch.gather(xb,2,hi[:,None,:].expand(-1,xb.size(1),-1))*w
        model.train(); res=model(fbank=xb); out=res["logits"]
        loss=torch.nn.functional.cross_entropy(out,ytr[idx],reduction="none")
        if res["mixup"] is not None:
            lam,partner=res["mixup"]; loss=lam*loss+(1-lam)*torch.nn.functional.cross_entropy(out,ytr[idx][partner],reduction="none")
        loss=loss.mean(); opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    model.eval()
    with torch.no_grad():
        tr=(model(fbank=Xtr)["logits"].argmax(-1)==ytr).float().mean().item()*100
        va=(model(fbank=Xva)["logits"].argmax(-1)==yva).float().mean().item()*100
        if test:  # only for a setting already chosen on valid
            Fte,yte,nte=load("test")
            te=(model(fbank=prep(Fte,nte))["logits"].argmax(-1)==yte).float().mean().item()*100
            return tr,va,te
    return tr,va
if __name__=="__main__":
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    kw=json.loads(sys.argv[1]) if len(sys.argv)>1 else {}
    t=time.time(); scores=run(**kw)
    print(json.dumps(kw), " ".join(f"{k} {v:.1f}" for k, v in zip(("train", "valid", "test"), scores)),
          "(%.0fs)" % (time.time()-t), flush=True)
