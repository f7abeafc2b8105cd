// OnednnLstm and OnednnLstmGrad: one LSTM layer over a whole sequence as
// oneDNN's fused LSTM primitive (lstm_forward / lstm_backward), the kernel
// PyTorch's CPU nn.LSTM runs. TensorFlow has no such op; its loop calls a
// plain-layout matrix product per step. Built by onednn_lstm.py.
//
// Layouts (float32, dense, row-major), gate order i, f, g, o as LSTMCell:
//   sequences (time, batch, features), h0 / c0 (batch, units),
//   kernel (features, 4 * units), recurrent_kernel (units, 4 * units),
//   bias (4 * units); hs (time, batch, units).
// The workspace output is what the backward primitive reads (the gates).

#include <cstring>
#include <unordered_map>

#include "oneapi/dnnl/dnnl.hpp"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace {

using dnnl::memory;
using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::TensorShape;
using tag = dnnl::memory::format_tag;

dnnl::engine& CpuEngine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// The memory descriptors of one call, from the inputs' shapes.
// `type` is the sequences', states' and weights' type (f32 or bf16); the
// bias, the weight gradients and the bias gradient are always f32.
struct Shapes {
  int64_t time, batch, features, units;
  memory::data_type type;

  memory::desc Md(memory::dims dims, tag format,
                  memory::data_type data_type) const {
    return memory::desc(dims, data_type, format);
  }
  memory::desc Sequence(int64_t width) const {
    return Md({time, batch, width}, tag::tnc, type);
  }
  memory::desc State() const {
    return Md({1, 1, batch, units}, tag::ldnc, type);
  }
  // Gradients are f32 whatever `type` is (oneDNN's bf16 backward wants so).
  memory::desc DiffSequence(int64_t width) const {
    return Md({time, batch, width}, tag::tnc, memory::data_type::f32);
  }
  memory::desc DiffState() const {
    return Md({1, 1, batch, units}, tag::ldnc, memory::data_type::f32);
  }
  memory::desc CellState() const {  // c: always f32
    return Md({1, 1, batch, units}, tag::ldnc, memory::data_type::f32);
  }
  memory::desc Kernel(int64_t rows, tag format,
                      memory::data_type data_type) const {
    return Md({1, 1, rows, 4, units}, format, data_type);
  }
  memory::desc Kernel(int64_t rows, tag format) const {
    return Kernel(rows, format, type);
  }
  memory::desc Bias() const {
    return Md({1, 1, 4, units}, tag::ldgo, memory::data_type::f32);
  }
};

Shapes ReadShapes(OpKernelContext* context) {
  const Tensor& sequences = context->input(0);
  const Tensor& recurrent_kernel = context->input(4);
  const bool bf16 = sequences.dtype() == tensorflow::DT_BFLOAT16;
  return Shapes{sequences.dim_size(0), sequences.dim_size(1),
                sequences.dim_size(2), recurrent_kernel.dim_size(0),
                bf16 ? memory::data_type::bf16 : memory::data_type::f32};
}

// forward_training keeps a workspace for the backward primitive;
// forward_inference keeps none, and in float32 it may use the brgemm
// kernels that oneDNN reserves for inference.
dnnl::lstm_forward::primitive_desc ForwardDesc(const Shapes& s,
                                               bool training = true) {
  return dnnl::lstm_forward::primitive_desc(
      CpuEngine(),
      training ? dnnl::prop_kind::forward_training
               : dnnl::prop_kind::forward_inference,
      dnnl::rnn_direction::unidirectional_left2right, s.Sequence(s.features),
      s.State(), s.CellState(), s.Kernel(s.features, tag::any),
      s.Kernel(s.units, tag::any), s.Bias(), s.Sequence(s.units), s.State(),
      s.CellState());
}

memory Wrap(const memory::desc& desc, const Tensor& tensor) {
  return memory(desc, CpuEngine(),
                const_cast<char*>(tensor.tensor_data().data()));
}

// `user` in the layout the primitive chose (a copy when it differs).
memory InLayout(memory user, const memory::desc& wanted,
                dnnl::stream& stream) {
  if (user.get_desc() == wanted) return user;
  memory copy(wanted, CpuEngine());
  dnnl::reorder(user, copy).execute(stream, user, copy);
  return copy;
}

// The six inputs as the primitive reads them, the weights in the layout
// its descriptor `pd` chose (forward and backward choose differently).
template <typename PrimitiveDesc>
std::unordered_map<int, memory> InputArgs(OpKernelContext* context,
                                          const Shapes& s,
                                          const PrimitiveDesc& pd,
                                          dnnl::stream& stream) {
  return {
      {DNNL_ARG_SRC_LAYER, Wrap(s.Sequence(s.features), context->input(0))},
      {DNNL_ARG_SRC_ITER, Wrap(s.State(), context->input(1))},
      {DNNL_ARG_SRC_ITER_C, Wrap(s.CellState(), context->input(2))},
      {DNNL_ARG_WEIGHTS_LAYER,
       InLayout(Wrap(s.Kernel(s.features, tag::ldigo), context->input(3)),
                pd.weights_layer_desc(), stream)},
      {DNNL_ARG_WEIGHTS_ITER,
       InLayout(Wrap(s.Kernel(s.units, tag::ldigo), context->input(4)),
                pd.weights_iter_desc(), stream)},
      {DNNL_ARG_BIAS, Wrap(s.Bias(), context->input(5))}};
}

void CheckShapes(OpKernelContext* context, const Shapes& s) {
  const int64_t gates = 4 * s.units;
  OP_REQUIRES(context,
              context->input(0).dims() == 3 &&
                  context->input(1).shape() == TensorShape({s.batch, s.units}) &&
                  context->input(2).shape() == TensorShape({s.batch, s.units}) &&
                  context->input(3).shape() ==
                      TensorShape({s.features, gates}) &&
                  context->input(4).shape() == TensorShape({s.units, gates}) &&
                  context->input(5).shape() == TensorShape({gates}),
              tensorflow::errors::InvalidArgument(
                  "OnednnLstm: shapes do not agree: sequences ",
                  context->input(0).shape().DebugString(), ", h0 ",
                  context->input(1).shape().DebugString(), ", kernel ",
                  context->input(3).shape().DebugString(),
                  ", recurrent_kernel ",
                  context->input(4).shape().DebugString()));
}

class OnednnLstmOp : public OpKernel {
 public:
  explicit OnednnLstmOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("training", &training_));
  }

  void Compute(OpKernelContext* context) override {
    const Shapes s = ReadShapes(context);
    CheckShapes(context, s);
    if (!context->status().ok()) return;
    Tensor *hs, *h, *c, *workspace;
    OP_REQUIRES_OK(context, context->allocate_output(
                                0, {s.time, s.batch, s.units}, &hs));
    OP_REQUIRES_OK(context,
                   context->allocate_output(1, {s.batch, s.units}, &h));
    OP_REQUIRES_OK(context,
                   context->allocate_output(2, {s.batch, s.units}, &c));
    try {
      auto pd = ForwardDesc(s, training_);
      const int64_t workspace_bytes =
          training_ ? pd.workspace_desc().get_size() : 0;
      OP_REQUIRES_OK(context, context->allocate_output(
                                  3, {workspace_bytes}, &workspace));
      dnnl::stream stream(CpuEngine());
      auto args = InputArgs(context, s, pd, stream);
      args.insert({{DNNL_ARG_DST_LAYER, Wrap(s.Sequence(s.units), *hs)},
                   {DNNL_ARG_DST_ITER, Wrap(s.State(), *h)},
                   {DNNL_ARG_DST_ITER_C, Wrap(s.CellState(), *c)}});
      if (training_) {
        args[DNNL_ARG_WORKSPACE] = Wrap(pd.workspace_desc(), *workspace);
      }
      dnnl::lstm_forward(pd).execute(stream, args);
      stream.wait();
    } catch (const dnnl::error& e) {
      context->SetStatus(tensorflow::errors::Internal(
          "OnednnLstm: oneDNN failed: ", e.what()));
    }
  }

 private:
  bool training_;
};

// Inputs: the forward's six inputs, its outputs hs, h, c, workspace, and
// the gradients of hs, h, c. Outputs: the gradients of the six inputs.
class OnednnLstmGradOp : public OpKernel {
 public:
  explicit OnednnLstmGradOp(OpKernelConstruction* context)
      : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Shapes s = ReadShapes(context);
    CheckShapes(context, s);
    if (!context->status().ok()) return;
    Tensor* grads[6];
    for (int i = 0; i < 6; ++i) {  // dtypes from the op's definition
      OP_REQUIRES_OK(context, context->allocate_output(
                                  i, context->input(i).shape(), &grads[i]));
    }
    try {
      Backward(context, s, grads);
    } catch (const dnnl::error& e) {
      context->SetStatus(tensorflow::errors::Internal(
          "OnednnLstmGrad: oneDNN failed: ", e.what()));
    }
  }

 private:
  void Backward(OpKernelContext* context, const Shapes& s, Tensor** grads) {
    auto forward_pd = ForwardDesc(s);
    auto any_kernel = s.Kernel(s.features, tag::any);
    auto any_recurrent = s.Kernel(s.units, tag::any);
    auto f32 = memory::data_type::f32;
    auto any_d_kernel = s.Kernel(s.features, tag::any, f32);
    auto any_d_recurrent = s.Kernel(s.units, tag::any, f32);
    dnnl::lstm_backward::primitive_desc pd(
        CpuEngine(), dnnl::prop_kind::backward,
        dnnl::rnn_direction::unidirectional_left2right,
        s.Sequence(s.features), s.State(), s.CellState(), any_kernel,
        any_recurrent, s.Bias(), s.Sequence(s.units), s.State(),
        s.CellState(), s.DiffSequence(s.features), s.DiffState(),
        s.CellState(), any_d_kernel, any_d_recurrent, s.Bias(),
        s.DiffSequence(s.units), s.DiffState(), s.CellState(), forward_pd);
    dnnl::stream stream(CpuEngine());
    auto args = InputArgs(context, s, pd, stream);
    // The primitive adds to the weight gradients: start them at zero.
    memory d_kernel(pd.diff_weights_layer_desc(), CpuEngine());
    memory d_recurrent(pd.diff_weights_iter_desc(), CpuEngine());
    std::memset(d_kernel.get_data_handle(), 0,
                pd.diff_weights_layer_desc().get_size());
    std::memset(d_recurrent.get_data_handle(), 0,
                pd.diff_weights_iter_desc().get_size());
    std::memset(const_cast<char*>(grads[5]->tensor_data().data()), 0,
                grads[5]->TotalBytes());
    args.insert(
        {{DNNL_ARG_DST_LAYER, Wrap(s.Sequence(s.units), context->input(6))},
         {DNNL_ARG_DST_ITER, Wrap(s.State(), context->input(7))},
         {DNNL_ARG_DST_ITER_C, Wrap(s.CellState(), context->input(8))},
         {DNNL_ARG_WORKSPACE, Wrap(pd.workspace_desc(), context->input(9))},
         {DNNL_ARG_DIFF_DST_LAYER,
          Wrap(s.DiffSequence(s.units), context->input(10))},
         {DNNL_ARG_DIFF_DST_ITER, Wrap(s.DiffState(), context->input(11))},
         {DNNL_ARG_DIFF_DST_ITER_C, Wrap(s.CellState(), context->input(12))},
         {DNNL_ARG_DIFF_SRC_LAYER, Wrap(s.DiffSequence(s.features), *grads[0])},
         {DNNL_ARG_DIFF_SRC_ITER, Wrap(s.DiffState(), *grads[1])},
         {DNNL_ARG_DIFF_SRC_ITER_C, Wrap(s.CellState(), *grads[2])},
         {DNNL_ARG_DIFF_WEIGHTS_LAYER, d_kernel},
         {DNNL_ARG_DIFF_WEIGHTS_ITER, d_recurrent},
         {DNNL_ARG_DIFF_BIAS, Wrap(s.Bias(), *grads[5])}});
    dnnl::lstm_backward(pd).execute(stream, args);
    ToUserLayout(d_kernel, s.Kernel(s.features, tag::ldigo, f32), *grads[3],
                 stream);
    ToUserLayout(d_recurrent, s.Kernel(s.units, tag::ldigo, f32), *grads[4],
                 stream);
    stream.wait();
  }

  static void ToUserLayout(memory& primitive, const memory::desc& user_desc,
                           const Tensor& user, dnnl::stream& stream) {
    memory target = Wrap(user_desc, user);
    dnnl::reorder(primitive, target).execute(stream, primitive, target);
  }
};

using tensorflow::shape_inference::InferenceContext;
using tensorflow::shape_inference::ShapeHandle;

tensorflow::Status ForwardShapes(InferenceContext* c) {
  ShapeHandle sequences, recurrent_kernel;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 3, &sequences));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(4), 2, &recurrent_kernel));
  auto time = c->Dim(sequences, 0), batch = c->Dim(sequences, 1);
  auto units = c->Dim(recurrent_kernel, 0);
  c->set_output(0, c->MakeShape({time, batch, units}));
  c->set_output(1, c->MakeShape({batch, units}));
  c->set_output(2, c->MakeShape({batch, units}));
  c->set_output(3, c->Vector(InferenceContext::kUnknownDim));
  return tensorflow::OkStatus();
}

tensorflow::Status GradShapes(InferenceContext* c) {
  for (int i = 0; i < 6; ++i) c->set_output(i, c->input(i));
  return tensorflow::OkStatus();
}

}  // namespace

REGISTER_OP("OnednnLstm")
    .Attr("T: {float, bfloat16}")
    .Attr("training: bool = true")
    .Input("sequences: T")
    .Input("h0: T")
    .Input("c0: float")
    .Input("kernel: T")
    .Input("recurrent_kernel: T")
    .Input("bias: float")
    .Output("hs: T")
    .Output("h: T")
    .Output("c: float")
    .Output("workspace: uint8")
    .SetShapeFn(ForwardShapes);

REGISTER_OP("OnednnLstmGrad")
    .Attr("T: {float, bfloat16}")
    .Input("sequences: T")
    .Input("h0: T")
    .Input("c0: float")
    .Input("kernel: T")
    .Input("recurrent_kernel: T")
    .Input("bias: float")
    .Input("hs: T")
    .Input("h: T")
    .Input("c: float")
    .Input("workspace: uint8")
    .Input("d_hs: float")
    .Input("d_h: float")
    .Input("d_c: float")
    .Output("d_sequences: float")
    .Output("d_h0: float")
    .Output("d_c0: float")
    .Output("d_kernel: float")
    .Output("d_recurrent_kernel: float")
    .Output("d_bias: float")
    .SetShapeFn(GradShapes);

REGISTER_KERNEL_BUILDER(Name("OnednnLstm").Device(tensorflow::DEVICE_CPU),
                        OnednnLstmOp);
REGISTER_KERNEL_BUILDER(
    Name("OnednnLstmGrad").Device(tensorflow::DEVICE_CPU), OnednnLstmGradOp);
