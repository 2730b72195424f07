// The whole public API of linquant in one include.
#pragma once

#include "linquant/common/error.h"
#include "linquant/common/warning.h"
#include "linquant/config/enums.h"
#include "linquant/config/linear_quantizer_config.h"
#include "linquant/config/module_linear_quantizer_config.h"
#include "linquant/export/coreml/save.h"
#include "linquant/frontend/capture.h"
#include "linquant/frontend/module_forward.h"
#include "linquant/quant/fake_quantize.h"
#include "linquant/quant/fake_quantize_options.h"
#include "linquant/quant/observer.h"
#include "linquant/quant/qparams.h"
#include "linquant/quant/quant_range.h"
#include "linquant/quantizer/linear_quantizer.h"
#include "linquant/quantizer/report.h"
#include "linquant/runtime/graph_module.h"
